"""Turns the engine's events into the proto envelope the data plane takes: pure."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import assert_never

from google.protobuf.timestamp_pb2 import Timestamp
from tidecast.events.v1 import events_pb2 as ev

from edge_sidecar.control_client import PROTOCOLS
from media_plane.edge_engine import (
    EngineEvent,
    IngestHealth,
    PublishDenied,
    StreamEnded,
    StreamStarted,
    ViewerEnded,
    ViewerProgress,
    ViewerStarted,
)

END_REASONS = {
    "publisher_stopped": ev.END_REASON_PUBLISHER_STOPPED,
    "publisher_lost": ev.END_REASON_PUBLISHER_LOST,
    "node_stopped": ev.END_REASON_NODE_STOPPED,
    "protocol_error": ev.END_REASON_PROTOCOL_ERROR,
}


def uuid7() -> str:
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def client_ip(client_addr: str) -> str:
    """The host part of an engine client address ("1.2.3.4:5678" -> "1.2.3.4")."""
    host = client_addr.rsplit(":", 1)[0] if client_addr.count(":") == 1 else client_addr
    return host.strip("[]")


def hash_ip(address: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{client_ip(address)}".encode()).hexdigest()


def build_event(event: EngineEvent, *, node_id: str, tenant_id: str, salt: str) -> ev.Event | None:
    """The envelope for an engine event, or None for events the data plane does not take
    (a denied publish is counted in metrics, not sent as analytics)."""
    occurred = Timestamp()
    occurred.FromNanoseconds(int(event.occurred_at * 1e9))
    envelope = ev.Event(
        event_id=uuid7(),
        tenant_id=tenant_id,
        node_id=node_id,
        stream_id=event.stream_id,
        occurred_at=occurred,
    )
    match event:
        case StreamStarted():
            media = event.media
            envelope.stream_started.CopyFrom(
                ev.StreamStarted(
                    protocol=PROTOCOLS[event.protocol],
                    session_id=event.session_id,
                    client_ip_hash=_ip_hash(event.client_addr, salt),
                    media=ev.MediaInfo(
                        video_codec=media.video_codec,
                        width=media.width,
                        height=media.height,
                        audio_codec=media.audio_codec,
                        audio_sample_rate=media.audio_sample_rate,
                        audio_channels=media.audio_channels,
                    ),
                )
            )
        case StreamEnded():
            envelope.stream_ended.CopyFrom(
                ev.StreamEnded(
                    protocol=PROTOCOLS[event.protocol],
                    session_id=event.session_id,
                    reason=END_REASONS.get(event.reason, ev.END_REASON_UNSPECIFIED),
                    duration_ms=event.duration_ms,
                    bytes_in=event.bytes_in,
                )
            )
        case IngestHealth():
            envelope.ingest_health.CopyFrom(
                ev.IngestHealthSample(
                    session_id=event.session_id,
                    bitrate_bps=event.bitrate_bps,
                    fps=event.fps,
                    keyframe_interval_s=event.keyframe_interval_s,
                    dropped_frames=event.dropped_frames,
                    interval_ms=event.interval_ms,
                )
            )
        case ViewerStarted():
            envelope.viewer_started.CopyFrom(
                ev.ViewerSessionStarted(
                    session_id=event.session_id,
                    protocol=PROTOCOLS[event.protocol],
                    client_ip_hash=_ip_hash(event.client_addr, salt),
                    user_agent=event.user_agent[:256],
                )
            )
        case ViewerProgress():
            envelope.viewer_progress.CopyFrom(
                ev.ViewerSessionProgress(
                    session_id=event.session_id,
                    protocol=PROTOCOLS[event.protocol],
                    bytes_sent=event.bytes_sent,
                    watched_ms=event.watched_ms,
                )
            )
        case ViewerEnded():
            envelope.viewer_ended.CopyFrom(
                ev.ViewerSessionEnded(
                    session_id=event.session_id,
                    protocol=PROTOCOLS[event.protocol],
                    bytes_sent=event.bytes_sent,
                    watched_ms=event.watched_ms,
                    duration_ms=event.duration_ms,
                )
            )
        case PublishDenied():
            return None
        case _:
            assert_never(event)
    return envelope


def _ip_hash(client_addr: str, salt: str) -> str:
    return hash_ip(client_addr, salt) if client_addr else ""
