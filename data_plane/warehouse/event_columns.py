"""The `events` table's columns and, per payload kind, which Event field fills each one
and by which rule. Declarative and pure: the one source both decodings are generated
from, the Arrow rows in Python (`event_rows.py`) and the engine's SQL
(`engine_decoding.py`), so the two cannot drift apart.

A column a kind does not list holds its type's zero value for that kind's events. Fields
are dotted paths from the payload (from the Event for the envelope); a column several
kinds fill reads the same kind of field in each, since only one member of the payload
oneof is set per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev


class Rule(Enum):
    """How a field's value becomes a column's value."""

    #: The value as it is, in the column's type.
    COPY = "copy"
    #: A MediaProtocol -> its lower-case name ("" for unspecified and unknown values).
    PROTOCOL = "protocol"
    #: An EndReason -> its lower-case name ("" for unspecified and unknown values).
    END_REASON = "end_reason"
    #: The value, at most the largest the column's unsigned type holds.
    CLAMP = "clamp"
    #: A bool -> 1 or 0.
    FLAG = "flag"
    #: The name of the payload member the event carries (envelope only).
    KIND = "kind"
    #: A Timestamp -> epoch milliseconds (envelope only).
    MILLIS = "millis"


@dataclass(frozen=True, slots=True)
class Fill:
    """Column `column` holds field `field` after `rule`."""

    column: str
    field: str
    rule: Rule = Rule.COPY


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

#: The columns every event fills from the Event itself.
ENVELOPE: tuple[Fill, ...] = (
    Fill("event_id", "event_id"),
    Fill("tenant_id", "tenant_id"),
    Fill("node_id", "node_id"),
    Fill("stream_id", "stream_id"),
    Fill("kind", "payload", Rule.KIND),
    Fill("occurred_at", "occurred_at", Rule.MILLIS),
)

#: Payload kind (member of the Event's `payload` oneof) -> the columns it fills.
PAYLOADS: dict[str, tuple[Fill, ...]] = {
    "viewer_progress": (
        Fill("session_id", "session_id"),
        Fill("protocol", "protocol", Rule.PROTOCOL),
        Fill("bytes", "bytes_sent"),
        Fill("watched_ms", "watched_ms"),
    ),
    "viewer_started": (
        Fill("session_id", "session_id"),
        Fill("protocol", "protocol", Rule.PROTOCOL),
        Fill("client_ip_hash", "client_ip_hash"),
        Fill("user_agent", "user_agent"),
    ),
    "viewer_ended": (
        Fill("session_id", "session_id"),
        Fill("protocol", "protocol", Rule.PROTOCOL),
        Fill("bytes", "bytes_sent"),
        Fill("watched_ms", "watched_ms"),
        Fill("duration_ms", "duration_ms"),
    ),
    "ingest_health": (
        Fill("session_id", "session_id"),
        Fill("bitrate_bps", "bitrate_bps"),
        Fill("fps", "fps"),
        Fill("keyframe_interval_s", "keyframe_interval_s"),
        Fill("dropped_frames", "dropped_frames"),
    ),
    "stream_started": (
        Fill("session_id", "session_id"),
        Fill("protocol", "protocol", Rule.PROTOCOL),
        Fill("client_ip_hash", "client_ip_hash"),
        Fill("video_codec", "media.video_codec"),
        Fill("width", "media.width", Rule.CLAMP),
        Fill("height", "media.height", Rule.CLAMP),
        Fill("audio_codec", "media.audio_codec"),
        Fill("audio_sample_rate", "media.audio_sample_rate"),
        Fill("audio_channels", "media.audio_channels", Rule.CLAMP),
    ),
    "stream_ended": (
        Fill("session_id", "session_id"),
        Fill("protocol", "protocol", Rule.PROTOCOL),
        Fill("end_reason", "reason", Rule.END_REASON),
        Fill("duration_ms", "duration_ms"),
        Fill("bytes", "bytes_in"),
    ),
    "node_health": (
        Fill("cpu_percent", "cpu_percent"),
        Fill("memory_used_bytes", "memory_used_bytes"),
        Fill("bandwidth_in_bps", "bandwidth_in_bps"),
        Fill("bandwidth_out_bps", "bandwidth_out_bps"),
        Fill("node_streams", "streams"),
        Fill("node_viewers", "viewers"),
    ),
    "balancer_decision": (
        Fill("playback_id", "playback_id"),
        Fill("chosen_node_id", "chosen_node_id"),
        Fill("score", "score"),
        Fill("candidates", "candidates"),
        Fill("client_ip_hash", "client_ip_hash"),
        Fill("distance_km", "distance_km"),
        Fill("requires_pull", "requires_pull", Rule.FLAG),
    ),
}


def largest(column: str) -> int:
    """The largest value of an unsigned integer column (what CLAMP clamps to)."""
    kind = SCHEMA.field(column).type
    if not pa.types.is_unsigned_integer(kind):
        raise TypeError(f"{column} is no unsigned integer column")
    return int(2**kind.bit_width - 1)


def fills_of(column: str) -> list[tuple[str, Fill]]:
    """(kind, fill) of every kind that fills `column`, in PAYLOADS order."""
    return [
        (kind, fill) for kind, fills in PAYLOADS.items() for fill in fills if fill.column == column
    ]


def _check() -> None:
    """The table's invariants, checked on import: a mistake fails every test at once."""
    payload = ev.Event.DESCRIPTOR.oneofs_by_name["payload"]
    if set(PAYLOADS) != {field.name for field in payload.fields}:
        raise ValueError("PAYLOADS must list every member of the payload oneof")
    envelope = {fill.column for fill in ENVELOPE}
    for kind, fills in PAYLOADS.items():
        for fill in fills:
            if fill.column not in COLUMNS or fill.column in envelope:
                raise ValueError(f"{kind}: {fill.column} is no payload column")
            if fill.rule in (Rule.KIND, Rule.MILLIS):
                raise ValueError(f"{kind}: {fill.rule} is for the envelope only")
    for column in COLUMNS:
        if column not in envelope and len({fill.rule for _, fill in fills_of(column)}) > 1:
            # The engine combines the kinds' fields first and applies the rule once.
            raise ValueError(f"the kinds filling {column} must share one rule")


_check()
