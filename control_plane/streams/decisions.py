"""Whether a publish or a play may go ahead: pure functions of what the store knows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PublishDenial(StrEnum):
    INVALID_KEY = "invalid_key"
    STREAM_DISABLED = "stream_disabled"
    TENANT_SUSPENDED = "tenant_suspended"
    QUOTA_EXCEEDED = "quota_exceeded"
    ALREADY_LIVE = "already_live"
    NODE_DRAINING = "node_draining"


class PlayDenial(StrEnum):
    UNKNOWN_STREAM = "unknown_stream"
    TOKEN_REQUIRED = "token_required"
    TENANT_SUSPENDED = "tenant_suspended"


@dataclass(frozen=True, slots=True)
class PublishFacts:
    """What the store says about a stream key at decision time."""

    stream_found: bool
    enabled: bool = True
    tenant_active: bool = True
    quota_exceeded: bool = False
    #: The node currently publishing the stream, if any.
    live_node_id: str | None = None
    live_since: datetime | None = None
    #: That node's last heartbeat, and whether its credential was revoked.
    live_node_heartbeat_at: datetime | None = None
    live_node_revoked: bool = False


def decide_publish(
    facts: PublishFacts,
    *,
    node_id: str,
    node_draining: bool,
    now: datetime,
    stale_after_s: float,
) -> PublishDenial | None:
    """None when the publish may go ahead, else the first reason it may not."""
    if not facts.stream_found:
        return PublishDenial.INVALID_KEY
    if not facts.tenant_active:
        return PublishDenial.TENANT_SUSPENDED
    if not facts.enabled:
        return PublishDenial.STREAM_DISABLED
    if facts.quota_exceeded:
        return PublishDenial.QUOTA_EXCEEDED
    if node_draining:
        return PublishDenial.NODE_DRAINING
    if live_elsewhere(facts, node_id=node_id, now=now, stale_after_s=stale_after_s):
        return PublishDenial.ALREADY_LIVE
    return None


def live_elsewhere(
    facts: PublishFacts, *, node_id: str, now: datetime, stale_after_s: float
) -> bool:
    """The stream is held by another node that is still alive.

    A node that stopped heartbeating (or was revoked) no longer holds its streams, so a
    broadcaster can move to another edge after a crash. The same node may always
    re-publish: the engine on that node refuses a second concurrent publisher itself.
    """
    if facts.live_node_id is None or facts.live_node_id == node_id:
        return False
    if facts.live_node_revoked:
        return False
    last_seen = facts.live_node_heartbeat_at or facts.live_since
    if last_seen is None:
        return False
    return (now - last_seen).total_seconds() < stale_after_s


def decide_play(
    *,
    stream_found: bool,
    tenant_active: bool,
    private_playback: bool,
    token_valid: bool,
) -> PlayDenial | None:
    if not stream_found:
        return PlayDenial.UNKNOWN_STREAM
    if not tenant_active:
        return PlayDenial.TENANT_SUSPENDED
    if private_playback and not token_valid:
        return PlayDenial.TOKEN_REQUIRED
    return None
