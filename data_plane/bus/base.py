"""The event bus: what the ingress produces to and the ingest and realtime hub consume from.

Two implementations share this interface and one contract test suite: the in-process bus
(single node) and Kafka through aiokafka. Delivery is at least once; the warehouse
deduplicates by event id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from data_plane.errors import DataPlaneError

#: The header of every message on the events topic naming its events' tenant (the
#: contract between the ingress that writes it and the ingest and realtime hub that read
#: it; empty for node-scoped events).
TENANT_HEADER = "tenant_id"
#: The header naming the payload kinds (`Event.payload` members) a message's events carry,
#: comma-separated and sorted; it may name more kinds than the events carry, never fewer.
#: A hint for the ingest: the warehouse engine then reads only those kinds' fields. A
#: message without it is read whole.
KINDS_HEADER = "event_kinds"


def kinds_header(kinds: Iterable[str]) -> tuple[str, bytes]:
    return KINDS_HEADER, ",".join(sorted(kinds)).encode()


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    #: Messages with the same key land on the same partition, so they stay in order. An
    #: empty key means none: such messages are spread round-robin and arrive with key None.
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class BusMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    #: Milliseconds since the epoch when the bus took the message.
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(slots=True)
class ConsumerOptions:
    #: None: no group, no commits, reads from the end (the realtime hub).
    group_id: str | None
    #: Where a group with no committed offset starts: "earliest" or "latest".
    start: str = "earliest"
    max_records: int = 2000
    #: Extra backend options (Kafka session timeouts in tests, ...).
    extra: dict[str, object] = field(default_factory=dict)


class BusProducer(Protocol):
    async def send_batch(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        """Returns once the bus has every message (Kafka: acks=all); raises otherwise."""
        ...


class BusConsumer(Protocol):
    async def fetch(self, timeout_ms: int) -> list[BusMessage]:
        """The next messages of the assigned partitions, in order per partition; [] on timeout."""
        ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commits the next offset to read per partition (the last processed + 1).

        Raises BusError for a partition this member does not own (any more: the group
        rebalanced). A consumer without a group has nothing to commit: a no-op.
        """
        ...

    def assignment(self) -> frozenset[TopicPartition]: ...

    async def close(self) -> None:
        """Leaves the group, so its partitions go to the other members; fetch then raises."""
        ...


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        """Creates the topic if it does not exist; an existing topic is left as it is."""
        ...

    def producer(self) -> BusProducer: ...

    async def consumer(self, topics: Sequence[str], options: ConsumerOptions) -> BusConsumer:
        """A started consumer; with a group, partitions are shared among its members."""
        ...


class BusError(DataPlaneError):
    """The bus could not take or give messages (broker down, timeout)."""
