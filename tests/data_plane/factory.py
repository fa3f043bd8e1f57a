"""Builds contract events for data-plane tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev


def uuid7(ms: int | None = None) -> str:
    ms = time.time_ns() // 1_000_000 if ms is None else ms
    rand = uuid.uuid4().int & ((1 << 74) - 1)
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(
    kind: str,
    *,
    tenant_id: str = "tenant-a",
    stream_id: str = "stream-1",
    node_id: str = "node-1",
    at_ms: int | None = None,
    event_id: str | None = None,
    **payload: Any,
) -> ev.Event:
    at = now_ms() if at_ms is None else at_ms
    stamp = Timestamp(seconds=at // 1000, nanos=(at % 1000) * 1_000_000)
    message = ev.Event(
        event_id=event_id or uuid7(at),
        tenant_id=tenant_id,
        node_id=node_id,
        stream_id=stream_id,
        occurred_at=stamp,
    )
    getattr(message, kind).SetInParent()
    target = getattr(message, kind)
    for name, value in payload.items():
        if name == "media":
            target.media.CopyFrom(ev.MediaInfo(**value))
        else:
            setattr(target, name, value)
    return message


def viewer(kind: str, session: str, **fields: Any) -> ev.Event:
    fields.setdefault("protocol", common_pb2.MEDIA_PROTOCOL_HLS)
    return event(kind, session_id=session, **fields)


def node_health(node_id: str = "node-1", **fields: Any) -> ev.Event:
    return event("node_health", tenant_id="", stream_id="", node_id=node_id, **fields)


def payload_kinds(tenant: str, stream: str, at_ms: int) -> list[ev.Event]:
    """One event of each stream-scoped payload kind, every field set (the values at the
    edges of what a column holds where there are edges)."""
    ids: dict[str, Any] = {"tenant_id": tenant, "stream_id": stream, "at_ms": at_ms}
    return [
        event(
            "stream_started",
            session_id="p",
            protocol=common_pb2.MEDIA_PROTOCOL_RTMP,
            client_ip_hash="ip",
            media={
                "video_codec": "h264",
                "width": 70_000,  # clamped to UInt16 by both
                "height": 720,
                "audio_codec": "aac",
                "audio_sample_rate": 48000,
                "audio_channels": 300,  # clamped to UInt8 by both
            },
            **ids,
        ),
        event(
            "stream_ended",
            session_id="p",
            protocol=common_pb2.MEDIA_PROTOCOL_SRT,
            reason=ev.END_REASON_PUBLISHER_LOST,
            duration_ms=9000,
            bytes_in=123,
            **ids,
        ),
        event(
            "ingest_health",
            session_id="p",
            bitrate_bps=2_500_000,
            fps=29.97,
            keyframe_interval_s=2.0,
            dropped_frames=3,
            **ids,
        ),
        viewer("viewer_started", "v", client_ip_hash="h", user_agent="ü-agent ✓", **ids),
        viewer("viewer_progress", "v", bytes_sent=10, watched_ms=1000, **ids),
        viewer(
            "viewer_ended",
            "v",
            protocol=99,  # an enum value this build does not know: an empty name, as in Python
            bytes_sent=5,
            watched_ms=500,
            duration_ms=1500,
            **ids,
        ),
        event(
            "balancer_decision",
            playback_id="pb",
            chosen_node_id="n2",
            score=0.5,
            candidates=4,
            client_ip_hash="ip2",
            distance_km=12.5,
            requires_pull=True,
            **ids,
        ),
    ]
