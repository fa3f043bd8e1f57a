"""The in-process event bus for single-node mode: Kafka's semantics that matter to the data
plane, kept in memory on the event loop.

What it shares with Kafka: topics with a fixed number of partitions, keyed messages on a
stable partition (crc32 of the key; an empty key spreads round-robin), an append-only log
per partition with offsets, consumer groups whose live members split the partitions
round-robin (re-split on every join and leave), committed offsets per group, ``start``
for groups without a commit, and group-less consumers that read from the end.

What it does not share: nothing survives the process, a member cannot die without
``close()`` (so there are no session timeouts), and topics must exist (``ensure_topic``)
before anyone produces to or consumes from them.

Memory is bounded: each partition keeps at most ``retention_messages`` messages and
``retention_bytes`` of payload (the newest message is always kept). A consumer whose
position fell below what is retained jumps to the oldest retained message; the messages
it lost are counted in ``skipped_messages``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from collections.abc import Sequence
from typing import Literal

from data_plane.bus.base import (
    BusError,
    BusMessage,
    ConsumerOptions,
    OutgoingMessage,
    TopicPartition,
)

DEFAULT_RETENTION_MESSAGES = 100_000
DEFAULT_RETENTION_BYTES = 32 * 1024 * 1024
_STARTS = frozenset({"earliest", "latest"})
# Dropped slots are compacted away once they are this many and at least half the list, so
# eviction costs O(1) amortised instead of shifting the whole log per message.
_COMPACT_MIN = 1024


def message_size(message: BusMessage) -> int:
    """What a message counts against ``retention_bytes``: key, value and headers."""
    size = len(message.value) + len(message.key or b"")
    return size + sum(len(name) + len(value) for name, value in message.headers)


class _PartitionLog:
    __slots__ = ("_base", "_bytes", "_entries", "_head", "_max_bytes", "_max_messages")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._entries: list[BusMessage | None] = []
        self._base = 0  # offset of _entries[0]
        self._head = 0  # index of the oldest retained entry
        self._bytes = 0
        self._max_messages = max_messages
        self._max_bytes = max_bytes

    @property
    def start_offset(self) -> int:
        return self._base + self._head

    @property
    def end_offset(self) -> int:
        return self._base + len(self._entries)

    def append(self, message: BusMessage) -> int:
        """Appends a message whose offset is ``end_offset``; returns how many were evicted."""
        self._entries.append(message)
        self._bytes += message_size(message)
        evicted = 0
        while len(self._entries) - self._head > 1 and (
            len(self._entries) - self._head > self._max_messages or self._bytes > self._max_bytes
        ):
            oldest = self._entries[self._head]
            assert oldest is not None
            self._bytes -= message_size(oldest)
            self._entries[self._head] = None
            self._head += 1
            evicted += 1
        if self._head >= _COMPACT_MIN and self._head * 2 >= len(self._entries):
            del self._entries[: self._head]
            self._base += self._head
            self._head = 0
        return evicted

    def evictions_for(self, count: int, size: int) -> int:
        """How many of the oldest messages appending `count` messages of `size` bytes in all
        would evict."""
        retained = len(self._entries) - self._head + count
        total = self._bytes + size
        evicted = 0
        index = self._head
        while retained - evicted > 1 and (
            retained - evicted > self._max_messages or total > self._max_bytes
        ):
            if index < len(self._entries):
                oldest = self._entries[index]
                assert oldest is not None
                total -= message_size(oldest)
                index += 1
            else:  # evicting messages of this very batch
                total -= size // max(count, 1)
            evicted += 1
        return evicted

    def read(self, offset: int, limit: int) -> list[BusMessage]:
        """Up to ``limit`` messages from ``offset`` (which must be retained) on."""
        first = offset - self._base
        return [entry for entry in self._entries[first : first + limit] if entry is not None]


class _Topic:
    __slots__ = ("_round_robin", "logs", "name", "readers")

    def __init__(self, name: str, partitions: int, max_messages: int, max_bytes: int) -> None:
        self.name = name
        self.logs = [_PartitionLog(max_messages, max_bytes) for _ in range(partitions)]
        #: Consumers to wake when something is appended.
        self.readers: set[InProcessConsumer] = set()
        self._round_robin = itertools.count()

    def partition_for(self, key: bytes) -> int:
        if not key:
            return next(self._round_robin) % len(self.logs)
        return zlib.crc32(key) % len(self.logs)

    def wake_readers(self) -> None:
        for reader in self.readers:
            reader.wake()


class _Group:
    __slots__ = ("committed", "members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        #: Live members in join order.
        self.members: list[InProcessConsumer] = []
        self.committed: dict[TopicPartition, int] = {}


class InProcessProducer:
    """Appends to the bus it came from; a closed bus refuses with :class:`BusError`."""

    def __init__(self, bus: InProcessBus) -> None:
        self._bus = bus

    async def send_batch(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self._bus._append(topic, messages)
        # Appending never awaits; yield once so a producer in a tight loop cannot starve
        # the consumers (who would then fall behind retention).
        await asyncio.sleep(0)


class InProcessConsumer:
    """A group member or a group-less reader; positions live here, commits in the group."""

    def __init__(
        self, bus: InProcessBus, topics: tuple[str, ...], options: ConsumerOptions
    ) -> None:
        self._bus = bus
        self.topics = topics
        self.group_id = options.group_id
        self.start: Literal["earliest", "latest"] = (
            "earliest" if options.start == "earliest" else "latest"
        )
        self._max_records = options.max_records
        #: Next offset to read per assigned partition.
        self._positions: dict[TopicPartition, int] = {}
        self._order: list[TopicPartition] = []
        self._rotation = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        #: Unread messages lost to retention before this consumer got to them.
        self.skipped_messages = 0

    def wake(self) -> None:
        self._wakeup.set()

    def position(self, partition: TopicPartition) -> int | None:
        """The next offset this consumer reads from an assigned partition."""
        return self._positions.get(partition)

    def _assign(self, positions: dict[TopicPartition, int]) -> None:
        self._positions = positions
        self._order = sorted(positions, key=lambda tp: (tp.topic, tp.partition))
        self.wake()

    def _ensure_open(self) -> None:
        if self._closed:
            raise BusError("the consumer is closed")
        self._bus._ensure_open()

    async def fetch(self, timeout_ms: int) -> list[BusMessage]:
        self._ensure_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_ms, 0) / 1000
        while True:
            self._wakeup.clear()
            messages = self._take()
            remaining = deadline - loop.time()
            if messages or remaining <= 0:
                return messages
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return self._take()
            self._ensure_open()

    def _take(self) -> list[BusMessage]:
        taken: list[BusMessage] = []
        if not self._order:
            return taken
        # Start at a different partition each time so one busy partition cannot starve
        # the others when max_records cuts the fetch short.
        first = self._rotation % len(self._order)
        self._rotation += 1
        for tp in itertools.chain(self._order[first:], self._order[:first]):
            room = self._max_records - len(taken)
            if room <= 0:
                break
            log = self._bus._log(tp)
            position = self._positions[tp]
            if position < log.start_offset:
                self._skip(log.start_offset - position)
                position = log.start_offset
            batch = log.read(position, room)
            self._positions[tp] = position + len(batch)
            taken.extend(batch)
        return taken

    def _skip(self, count: int) -> None:
        self.skipped_messages += count
        self._bus._skipped += count

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commits for the group; a group-less consumer has nothing to commit (no-op).

        Raises :class:`BusError` for a partition this member no longer owns (another
        member joined or left since it was fetched), as Kafka refuses such a commit.
        """
        self._ensure_open()
        if self.group_id is None:
            return
        foreign = [tp for tp in offsets if tp not in self._positions]
        if foreign:
            raise BusError(f"cannot commit {foreign}: not assigned to this member")
        self._bus._group(self.group_id).committed.update(offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(self._positions)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._detach(self)
        self._positions, self._order = {}, []
        self.wake()


class InProcessBus:
    """The whole bus of one process. ``start()`` before use; ``close()`` refuses everything
    afterwards, like a broker that is gone."""

    def __init__(
        self,
        *,
        retention_messages: int = DEFAULT_RETENTION_MESSAGES,
        retention_bytes: int = DEFAULT_RETENTION_BYTES,
        protect_groups: bool = True,
    ) -> None:
        if retention_messages < 1 or retention_bytes < 1:
            raise ValueError("retention limits must be at least 1")
        #: Refuse appends that would evict what a consumer group has not committed.
        self._protect_groups = protect_groups
        self._retention_messages = retention_messages
        self._retention_bytes = retention_bytes
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        self._consumers: set[InProcessConsumer] = set()
        self._state: Literal["new", "started", "closed"] = "new"
        self._evicted = 0
        self._skipped = 0

    @property
    def evicted_messages(self) -> int:
        """Messages dropped by retention so far, read or not."""
        return self._evicted

    @property
    def skipped_messages(self) -> int:
        """Messages consumers lost to retention before reading them, summed."""
        return self._skipped

    async def start(self) -> None:
        if self._state == "closed":
            raise BusError("the in-process bus is closed and cannot start again")
        self._state = "started"

    async def close(self) -> None:
        self._state = "closed"
        for consumer in list(self._consumers):
            await consumer.close()

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        """Creates the topic; an existing topic keeps its partitions, as with Kafka."""
        self._ensure_open()
        if partitions < 1:
            raise ValueError(f"a topic needs at least one partition, not {partitions}")
        if topic not in self._topics:
            self._topics[topic] = _Topic(
                topic, partitions, self._retention_messages, self._retention_bytes
            )

    def producer(self) -> InProcessProducer:
        return InProcessProducer(self)

    async def consumer(self, topics: Sequence[str], options: ConsumerOptions) -> InProcessConsumer:
        self._ensure_open()
        if isinstance(topics, str):
            raise TypeError("topics is a sequence of topic names, not one string")
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        if options.start not in _STARTS:
            raise ValueError(f"start must be 'earliest' or 'latest', not {options.start!r}")
        if options.max_records < 1:
            raise ValueError("max_records must be at least 1")
        subscribed = [self._topic(name) for name in dict.fromkeys(topics)]
        consumer = InProcessConsumer(self, tuple(topic.name for topic in subscribed), options)
        self._consumers.add(consumer)
        for topic in subscribed:
            topic.readers.add(consumer)
        if options.group_id is None:
            consumer._assign(
                {
                    TopicPartition(topic.name, index): log.end_offset
                    for topic in subscribed
                    for index, log in enumerate(topic.logs)
                }
            )
        else:
            group = self._groups.setdefault(options.group_id, _Group(options.group_id))
            group.members.append(consumer)
            self._rebalance(group)
        return consumer

    def _ensure_open(self) -> None:
        if self._state != "started":
            state = "closed" if self._state == "closed" else "not started"
            raise BusError(f"the in-process bus is {state}")

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise BusError(f"unknown topic {name!r}: call ensure_topic first")
        return topic

    def _log(self, tp: TopicPartition) -> _PartitionLog:
        return self._topics[tp.topic].logs[tp.partition]

    def _group(self, name: str) -> _Group:
        return self._groups[name]

    def _append(self, topic_name: str, messages: Sequence[OutgoingMessage]) -> None:
        self._ensure_open()
        topic = self._topic(topic_name)
        if self._protect_groups:
            self._refuse_if_unread_would_be_evicted(topic, messages)
        now_ms = int(time.time() * 1000)
        for message in messages:
            partition = topic.partition_for(message.key)
            log = topic.logs[partition]
            self._evicted += log.append(
                BusMessage(
                    topic=topic.name,
                    partition=partition,
                    offset=log.end_offset,
                    key=message.key or None,
                    value=message.value,
                    headers=tuple(message.headers),
                    timestamp_ms=now_ms,
                )
            )
        if messages:
            topic.wake_readers()

    def _refuse_if_unread_would_be_evicted(
        self, topic: _Topic, messages: Sequence[OutgoingMessage]
    ) -> None:
        """Backpressure instead of loss: a batch whose append would evict messages a
        consumer group has not committed yet is refused whole, so the producer (the
        ingress) answers "unavailable" and the edges keep the events in their spools."""
        groups = [
            g
            for g in self._groups.values()
            if any(tp.topic == topic.name for tp in g.committed)
            or any(topic.name in member.topics for member in g.members)
        ]
        if not groups:
            return
        adding: dict[int, list[int]] = {}
        for message in messages:
            partition = topic.partition_for(message.key) if message.key else 0
            entry = adding.setdefault(partition, [0, 0])
            entry[0] += 1
            entry[1] += (
                len(message.value)
                + len(message.key)
                + sum(len(n) + len(v) for n, v in message.headers)
            )
        for partition, (count, size) in adding.items():
            log = topic.logs[partition]
            evicted_up_to = log.start_offset + log.evictions_for(count, size)
            tp = TopicPartition(topic.name, partition)
            for group in groups:
                if evicted_up_to > group.committed.get(tp, log.start_offset):
                    raise BusError(
                        f"in-process bus full: group {group.name!r} has not consumed "
                        f"{tp.topic}/{tp.partition} far enough; retry later"
                    )

    def _detach(self, consumer: InProcessConsumer) -> None:
        self._consumers.discard(consumer)
        for name in consumer.topics:
            self._topics[name].readers.discard(consumer)
        if consumer.group_id is None:
            return
        group = self._groups[consumer.group_id]
        group.members.remove(consumer)
        self._rebalance(group)

    def _rebalance(self, group: _Group) -> None:
        """Kafka's round-robin assignor: every partition of the group's topics in order,
        dealt to the members in turn, skipping members not subscribed to its topic."""
        names = sorted({name for member in group.members for name in member.topics})
        plan: dict[InProcessConsumer, list[TopicPartition]] = {m: [] for m in group.members}
        turn = itertools.cycle(group.members)
        for name in names:
            for index in range(len(self._topics[name].logs)):
                member = next(turn)
                while name not in member.topics:
                    member = next(turn)
                plan[member].append(TopicPartition(name, index))
        for member, partitions in plan.items():
            member._assign({tp: self._resume_position(group, member, tp) for tp in partitions})

    def _resume_position(self, group: _Group, member: InProcessConsumer, tp: TopicPartition) -> int:
        kept = member.position(tp)
        if kept is not None:
            # Still this member's: go on where it was, no redelivery needed.
            return kept
        log = self._log(tp)
        committed = group.committed.get(tp)
        if committed is not None:
            # Below the retained start is handled (and counted) when fetching.
            return min(committed, log.end_offset)
        return log.start_offset if member.start == "earliest" else log.end_offset
