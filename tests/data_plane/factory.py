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
