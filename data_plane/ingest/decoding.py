"""Bus messages -> warehouse rows, and what cannot be decoded -> dead letters. Pure.

`rows_of` is the ingest's CPU-bound step (protobuf parsing and conversion to Arrow
columns, a few microseconds per event); it takes and returns only picklable values, so
the consumer can run it in a worker process (`decoder_pool.py`) while its own event loop
keeps fetching, looking up and inserting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from google.protobuf.message import DecodeError
from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import (
    KINDS_HEADER,
    TENANT_HEADER,
    BusMessage,
    OutgoingMessage,
    TopicPartition,
)
from data_plane.warehouse import batch_problems
from data_plane.warehouse.engine_decoding import read_kinds
from data_plane.warehouse.event_columns import SCHEMA
from data_plane.warehouse.event_rows import events_to_arrow

ERROR_HEADER = "error"
SOURCE_HEADER = "source"

#: One message as the decoding step sees it: its value and its tenant header.
Payload = tuple[bytes, str]


@dataclass(frozen=True, slots=True)
class DecodedRows:
    #: The rows of every decodable message, for the warehouse's `events` table.
    rows: pa.Table
    #: (message index, error) of the messages that cannot be decoded.
    problems: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Decoded:
    rows: pa.Table
    dead_letters: list[OutgoingMessage]


def _dead(message: BusMessage, error: str) -> OutgoingMessage:
    source = f"{message.topic}/{message.partition}/{message.offset}"
    return OutgoingMessage(
        key=message.key or b"",
        value=message.value,
        headers=(
            *message.headers,
            (ERROR_HEADER, error.encode()[:1000]),
            (SOURCE_HEADER, source.encode()),
        ),
    )


def _problem(events: Sequence[ev.Event], tenant: str) -> str | None:
    if not events:
        return batch_problems.EMPTY_BATCH
    for event in events:
        if event.tenant_id != tenant:
            return batch_problems.FOREIGN_TENANT
        if len(event.event_id) != 36 or event.WhichOneof("payload") is None:
            return batch_problems.NO_PAYLOAD_OR_BAD_ID
    return None


def _events_of(value: bytes, tenant: str) -> tuple[Sequence[ev.Event], str | None]:
    try:
        events = ev.EventBatch.FromString(value).events
    except DecodeError as exc:
        return (), f"{batch_problems.NOT_EVENT_BATCH}: {exc}"
    return events, _problem(events, tenant)


def rows_of(payloads: Sequence[Payload]) -> DecodedRows:
    """The rows of the decodable messages among `payloads`, converted together (one
    conversion per batch, not per message), and the problems of the others."""
    problems: list[tuple[int, str]] = []
    kept: list[tuple[int, Sequence[ev.Event]]] = []
    for index, (value, tenant) in enumerate(payloads):
        events, problem = _events_of(value, tenant)
        if problem is None:
            kept.append((index, events))
        else:
            problems.append((index, problem))
    if not kept:
        return DecodedRows(rows=SCHEMA.empty_table(), problems=problems)
    try:
        rows = events_to_arrow([event for _, events in kept for event in events])
    except ValueError:
        # An id of the right length that is no UUID: rare enough to find its message by
        # converting message by message.
        tables: list[pa.Table] = []
        for index, events in kept:
            try:
                tables.append(events_to_arrow(events))
            except ValueError as exc:
                problems.append((index, f"{batch_problems.UNDECODABLE}: {exc}"))
        problems.sort()
        rows = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return DecodedRows(rows=rows, problems=problems)


def payloads_of(messages: Sequence[BusMessage]) -> list[Payload]:
    return [(m.value, (m.header(TENANT_HEADER) or b"").decode(errors="replace")) for m in messages]


def kinds_of(messages: Sequence[BusMessage]) -> list[frozenset[str] | None]:
    """The event kinds each message's header names (None: no usable header)."""
    return [read_kinds(m.header(KINDS_HEADER)) for m in messages]


def dead_letters_of(
    messages: Sequence[BusMessage], problems: Sequence[tuple[int, str]]
) -> list[OutgoingMessage]:
    """The messages with (index, error) problems, as dead letters."""
    return [_dead(messages[index], error) for index, error in problems]


def with_dead_letters(messages: Sequence[BusMessage], decoded: DecodedRows) -> Decoded:
    """The rows, and the messages `decoded` found problems with as dead letters."""
    return Decoded(rows=decoded.rows, dead_letters=dead_letters_of(messages, decoded.problems))


def decode(messages: Sequence[BusMessage]) -> Decoded:
    """`rows_of` in this process, with dead letters."""
    return with_dead_letters(messages, rows_of(payloads_of(messages)))


def next_offsets(messages: Sequence[BusMessage]) -> dict[TopicPartition, int]:
    """The offsets to commit after `messages`: one past the last of each partition."""
    offsets: dict[TopicPartition, int] = {}
    for message in messages:
        tp = TopicPartition(message.topic, message.partition)
        offsets[tp] = max(offsets.get(tp, 0), message.offset + 1)
    return offsets
