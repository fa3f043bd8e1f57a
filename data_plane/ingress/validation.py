"""Which events of a batch the ingress accepts: pure rules, no I/O.

An event is refused, with a reason, when it is malformed (bad id, no payload, missing or
oversized fields, a time far from now), when it claims another node than the caller, or
when its tenant does not own its stream. Node health samples belong to no tenant; every
other event belongs to the tenant that owns its stream, as the control plane says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from tidecast.events.v1 import events_pb2 as ev

MAX_ID_LEN = 64
#: An encoded event larger than this is refused (room for a 512-byte user agent and ids).
MAX_EVENT_BYTES = 2048
#: Events stamped further ahead than this are refused (clock skew allowance).
MAX_FUTURE_MS = 5 * 60 * 1000

NODE_SCOPED_KINDS = frozenset({"node_health"})


class Rejection(StrEnum):
    MALFORMED_ID = "malformed event id"
    NO_PAYLOAD = "event has no payload"
    MISSING_TIME = "occurred_at missing"
    TOO_OLD = "occurred_at older than the retention"
    IN_FUTURE = "occurred_at too far in the future"
    WRONG_NODE = "node_id is not the calling node"
    MISSING_STREAM = "stream_id or tenant_id missing"
    FIELD_TOO_LONG = "tenant or stream id too long"
    TOO_LARGE = "event too large"
    NODE_EVENT_WITH_TENANT = "node events carry no tenant or stream"
    UNKNOWN_STREAM = "unknown stream"
    FOREIGN_TENANT = "stream belongs to another tenant"


#: The canonical textual UUID (what the warehouse's UUID column parses).
UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_valid_uuid = UUID_TEXT.fullmatch
#: Ids one per line, each a canonical textual UUID: a whole request's ids checked in one
#: call of the regex engine instead of one call per event.
_all_valid_uuids = re.compile(f"(?:{UUID_TEXT.pattern}\n)*").fullmatch


def all_valid_ids(ids: Sequence[str]) -> bool:
    """Whether every id is a canonical textual UUID."""
    lines = "\n".join(ids) + "\n" if ids else ""
    # The length rules out an id holding a line break and lines that look like ids.
    return len(lines) == 37 * len(ids) and _all_valid_uuids(lines) is not None


def check_shape(
    event: ev.Event,
    node_id: str,
    now_ms: int,
    oldest_ms: int,
    size: int | None = None,
    *,
    valid_id: bool = False,
) -> Rejection | None:
    """Why `event` is refused whoever owns its stream, or None. This runs for every event
    at 100k+ events/s, so it reads each field once, takes the encoded size from the
    caller when it knows it (`event_spans`), else from the C extension, and skips the id
    when the caller checked it (`valid_id`, see `all_valid_ids`)."""
    if not valid_id and not _valid_uuid(event.event_id):
        return Rejection.MALFORMED_ID
    kind = event.WhichOneof("payload")
    if kind is None:
        return Rejection.NO_PAYLOAD
    if event.node_id != node_id:
        return Rejection.WRONG_NODE
    stamp = event.occurred_at
    seconds = stamp.seconds
    if seconds == 0 and stamp.nanos == 0:  # unset (the epoch is no valid event time either)
        return Rejection.MISSING_TIME
    if seconds * 1000 < oldest_ms:
        return Rejection.TOO_OLD
    if seconds * 1000 > now_ms + MAX_FUTURE_MS:
        return Rejection.IN_FUTURE
    if (event.ByteSize() if size is None else size) > MAX_EVENT_BYTES:
        return Rejection.TOO_LARGE
    tenant_id = event.tenant_id
    stream_id = event.stream_id
    if len(tenant_id) > MAX_ID_LEN or len(stream_id) > MAX_ID_LEN:
        return Rejection.FIELD_TOO_LONG
    if kind in NODE_SCOPED_KINDS:
        return Rejection.NODE_EVENT_WITH_TENANT if tenant_id or stream_id else None
    if not tenant_id or not stream_id:
        return Rejection.MISSING_STREAM
    return None


def check_owner(tenant_id: str, owner: str | None) -> Rejection | None:
    """Why an event of `tenant_id` on a stream `owner` owns (None: unknown) is refused."""
    if owner is None:
        return Rejection.UNKNOWN_STREAM
    if owner != tenant_id:
        return Rejection.FOREIGN_TENANT
    return None
