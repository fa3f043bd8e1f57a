"""Turns the engine's events into the proto envelope the data plane takes: pure."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from google.protobuf.timestamp_pb2 import Timestamp
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from edge_sidecar.control_client import PROTOCOLS
from media_plane.edge_engine import EngineEvent, EngineEventKind

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


def _protocol(value: object) -> common_pb2.MediaProtocol.ValueType:
    return PROTOCOLS.get(str(value), common_pb2.MEDIA_PROTOCOL_UNSPECIFIED)


def _int(attrs: dict[str, str | int | float | bool], key: str) -> int:
    return int(attrs.get(key, 0) or 0)


def build_event(event: EngineEvent, *, node_id: str, tenant_id: str, salt: str) -> ev.Event | None:
    """The envelope for an engine event, or None for events the data plane does not take
    (a denied publish is counted in metrics, not sent as analytics)."""
    attrs = event.attributes
    occurred = Timestamp()
    occurred.FromNanoseconds(int(event.occurred_at * 1e9))
    envelope = ev.Event(
        event_id=uuid7(),
        tenant_id=tenant_id,
        node_id=node_id,
        stream_id=event.stream_id,
        occurred_at=occurred,
    )
    session_id = str(attrs.get("session_id", ""))
    ip_hash = hash_ip(str(attrs["client_addr"]), salt) if attrs.get("client_addr") else ""
    kind = event.kind
    if kind is EngineEventKind.STREAM_STARTED:
        envelope.stream_started.CopyFrom(
            ev.StreamStarted(
                protocol=_protocol(attrs.get("protocol")),
                session_id=session_id,
                client_ip_hash=ip_hash,
                media=ev.MediaInfo(
                    video_codec=str(attrs.get("video_codec", "")),
                    width=_int(attrs, "width"),
                    height=_int(attrs, "height"),
                    audio_codec=str(attrs.get("audio_codec", "")),
                    audio_sample_rate=_int(attrs, "audio_sample_rate"),
                    audio_channels=_int(attrs, "audio_channels"),
                ),
            )
        )
    elif kind is EngineEventKind.STREAM_ENDED:
        envelope.stream_ended.CopyFrom(
            ev.StreamEnded(
                protocol=_protocol(attrs.get("protocol")),
                session_id=session_id,
                reason=END_REASONS.get(str(attrs.get("reason", "")), ev.END_REASON_UNSPECIFIED),
                duration_ms=_int(attrs, "duration_ms"),
                bytes_in=_int(attrs, "bytes_in"),
            )
        )
    elif kind is EngineEventKind.INGEST_HEALTH:
        envelope.ingest_health.CopyFrom(
            ev.IngestHealthSample(
                session_id=session_id,
                bitrate_bps=_int(attrs, "bitrate_bps"),
                fps=float(attrs.get("fps", 0.0)),
                keyframe_interval_s=float(attrs.get("keyframe_interval_s", 0.0)),
                dropped_frames=_int(attrs, "dropped_frames"),
                interval_ms=_int(attrs, "interval_ms"),
            )
        )
    elif kind is EngineEventKind.VIEWER_STARTED:
        envelope.viewer_started.CopyFrom(
            ev.ViewerSessionStarted(
                session_id=session_id,
                protocol=_protocol(attrs.get("protocol")),
                client_ip_hash=ip_hash,
                user_agent=str(attrs.get("user_agent", ""))[:256],
            )
        )
    elif kind is EngineEventKind.VIEWER_PROGRESS:
        envelope.viewer_progress.CopyFrom(
            ev.ViewerSessionProgress(
                session_id=session_id,
                protocol=_protocol(attrs.get("protocol")),
                bytes_sent=_int(attrs, "bytes_sent"),
                watched_ms=_int(attrs, "watched_ms"),
            )
        )
    elif kind is EngineEventKind.VIEWER_ENDED:
        envelope.viewer_ended.CopyFrom(
            ev.ViewerSessionEnded(
                session_id=session_id,
                protocol=_protocol(attrs.get("protocol")),
                bytes_sent=_int(attrs, "bytes_sent"),
                watched_ms=_int(attrs, "watched_ms"),
                duration_ms=_int(attrs, "duration_ms"),
            )
        )
    else:
        return None
    return envelope
