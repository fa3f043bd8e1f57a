"""What the engine reports to its host: one frozen dataclass per event kind.

The host matches on the class (exhaustively, so a new kind or field is a type error until
it is handled); `kind` names the event for logs and metrics. Times are wall-clock seconds
since the epoch; byte counts and watch times are deltas since the session's previous
event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, TypeAlias

from media_plane.media.protocol import MediaProtocol

__all__ = [
    "EngineEvent",
    "EngineEventKind",
    "IngestHealth",
    "MediaInfo",
    "PublishDenied",
    "StreamEnded",
    "StreamStarted",
    "ViewerEnded",
    "ViewerProgress",
    "ViewerStarted",
]


class EngineEventKind(StrEnum):
    STREAM_STARTED = "stream_started"
    STREAM_ENDED = "stream_ended"
    INGEST_HEALTH = "ingest_health"
    PUBLISH_DENIED = "publish_denied"
    VIEWER_STARTED = "viewer_started"
    VIEWER_PROGRESS = "viewer_progress"
    VIEWER_ENDED = "viewer_ended"


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What a publish carries, from its first frames ("" and 0 where a track is absent)."""

    video_codec: str = ""
    width: int = 0
    height: int = 0
    audio_codec: str = ""
    audio_sample_rate: int = 0
    audio_channels: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStarted:
    kind: ClassVar[EngineEventKind] = EngineEventKind.STREAM_STARTED
    stream_id: str
    occurred_at: float
    session_id: str
    protocol: MediaProtocol
    client_addr: str
    media: MediaInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded:
    kind: ClassVar[EngineEventKind] = EngineEventKind.STREAM_ENDED
    stream_id: str
    occurred_at: float
    session_id: str
    protocol: MediaProtocol
    #: "publisher_stopped", "publisher_lost", "node_stopped" or "protocol_error".
    reason: str
    duration_ms: int
    bytes_in: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestHealth:
    kind: ClassVar[EngineEventKind] = EngineEventKind.INGEST_HEALTH
    stream_id: str
    occurred_at: float
    session_id: str
    bitrate_bps: int
    fps: float
    keyframe_interval_s: float
    dropped_frames: int
    interval_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishDenied:
    """A refused publish: counted by the host, not sent as analytics."""

    kind: ClassVar[EngineEventKind] = EngineEventKind.PUBLISH_DENIED
    #: Empty when the refusal came before a stream was known (an unknown key).
    stream_id: str
    occurred_at: float
    protocol: MediaProtocol
    client_addr: str
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewerStarted:
    kind: ClassVar[EngineEventKind] = EngineEventKind.VIEWER_STARTED
    stream_id: str
    occurred_at: float
    session_id: str
    protocol: MediaProtocol
    playback_id: str
    client_addr: str
    user_agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewerProgress:
    kind: ClassVar[EngineEventKind] = EngineEventKind.VIEWER_PROGRESS
    stream_id: str
    occurred_at: float
    session_id: str
    protocol: MediaProtocol
    playback_id: str
    bytes_sent: int
    watched_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewerEnded:
    kind: ClassVar[EngineEventKind] = EngineEventKind.VIEWER_ENDED
    stream_id: str
    occurred_at: float
    session_id: str
    protocol: MediaProtocol
    playback_id: str
    bytes_sent: int
    watched_ms: int
    duration_ms: int
    #: Why a stateful session (WHEP) ended; empty for HLS viewers, who just stop asking.
    reason: str = ""


EngineEvent: TypeAlias = (
    StreamStarted
    | StreamEnded
    | IngestHealth
    | PublishDenied
    | ViewerStarted
    | ViewerProgress
    | ViewerEnded
)
