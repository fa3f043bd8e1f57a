"""What the engine asks of whoever hosts it.

The engine knows nothing of tenants, billing or gRPC: it asks these hooks whether a
publish or a play may go ahead and reports what happened. The edge sidecar implements
them by calling the control and data planes; tests implement them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from media_plane.media.events import EngineEvent
from media_plane.media.protocol import MediaProtocol


class PublishDenial(StrEnum):
    INVALID_KEY = "invalid_key"
    STREAM_DISABLED = "stream_disabled"
    TENANT_SUSPENDED = "tenant_suspended"
    QUOTA_EXCEEDED = "quota_exceeded"
    ALREADY_LIVE = "already_live"
    UNAVAILABLE = "unavailable"


class PlayDenial(StrEnum):
    UNKNOWN = "unknown"
    TOKEN_REQUIRED = "token_required"
    TENANT_SUSPENDED = "tenant_suspended"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class PublishGrant:
    """A publish that may go ahead. Ids are opaque to the engine."""

    stream_id: str
    playback_id: str
    #: Target HLS segment duration in seconds for this stream.
    segment_duration: float = 2.0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PublishDecision:
    grant: PublishGrant | None
    denial: PublishDenial | None = None
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.grant is not None

    @classmethod
    def allow(cls, grant: PublishGrant) -> PublishDecision:
        return cls(grant=grant)

    @classmethod
    def deny(cls, denial: PublishDenial, message: str = "") -> PublishDecision:
        return cls(grant=None, denial=denial, message=message)


@dataclass(frozen=True, slots=True)
class PlayDecision:
    allowed: bool
    denial: PlayDenial | None = None
    message: str = ""


class EngineHooks(Protocol):
    async def authorize_publish(
        self, key: str, protocol: MediaProtocol, client_addr: str
    ) -> PublishDecision: ...

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision: ...

    def emit(self, event: EngineEvent) -> None:
        """Record an event. Must not block: implementations queue or spool."""
        ...
