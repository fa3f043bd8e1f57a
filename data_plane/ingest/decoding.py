"""Bus messages -> events, and what cannot be decoded -> dead letters. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import BusMessage, OutgoingMessage, TopicPartition

TENANT_HEADER = "tenant_id"
ERROR_HEADER = "error"
SOURCE_HEADER = "source"


@dataclass(frozen=True, slots=True)
class Decoded:
    events: list[ev.Event]
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


def _problem(events: list[ev.Event], tenant: str) -> str | None:
    for event in events:
        if event.tenant_id != tenant:
            return f"event tenant differs from the {TENANT_HEADER} header"
        if len(event.event_id) != 36 or event.WhichOneof("payload") is None:
            return "event without payload or with a malformed id"
    return None


def decode(messages: Sequence[BusMessage]) -> Decoded:
    events: list[ev.Event] = []
    dead: list[OutgoingMessage] = []
    for message in messages:
        try:
            batch = ev.EventBatch.FromString(message.value)
        except DecodeError as exc:
            dead.append(_dead(message, f"not an EventBatch: {exc}"))
            continue
        tenant = (message.header(TENANT_HEADER) or b"").decode(errors="replace")
        batch_events = list(batch.events)
        if not batch_events:
            dead.append(_dead(message, "empty EventBatch"))
            continue
        problem = _problem(batch_events, tenant)
        if problem is not None:
            dead.append(_dead(message, problem))
            continue
        events.extend(batch_events)
    return Decoded(events=events, dead_letters=dead)


def next_offsets(messages: Sequence[BusMessage]) -> dict[TopicPartition, int]:
    """The offsets to commit after `messages`: one past the last of each partition."""
    offsets: dict[TopicPartition, int] = {}
    for message in messages:
        tp = TopicPartition(message.topic, message.partition)
        offsets[tp] = max(offsets.get(tp, 0), message.offset + 1)
    return offsets
