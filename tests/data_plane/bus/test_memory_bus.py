"""What only the in-process bus has to prove: bounded memory, the round-robin split of a
group, and its lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from data_plane.bus.base import (
    BusError,
    BusMessage,
    ConsumerOptions,
    OutgoingMessage,
    TopicPartition,
)
from data_plane.bus.memory import InProcessBus, InProcessConsumer


@pytest_asyncio.fixture
async def small_bus() -> AsyncIterator[InProcessBus]:
    """Keeps five messages or 1,000 bytes per partition, evicting even what groups have not
    read (the retention rules alone; backpressure is tested below)."""
    bus = InProcessBus(retention_messages=5, retention_bytes=1_000, protect_groups=False)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def messages(count: int, *, first: int = 0, size: int = 10) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(key=b"k", value=str(n).encode().ljust(size, b"."))
        for n in range(first, first + count)
    ]


def offsets(got: list[BusMessage]) -> list[int]:
    return [message.offset for message in got]


@pytest.mark.asyncio
async def test_retention_keeps_the_newest_messages(small_bus: InProcessBus) -> None:
    await small_bus.ensure_topic("events", 1)
    await small_bus.producer().send_batch("events", messages(12))

    reader = await small_bus.consumer(["events"], ConsumerOptions("ingest"))
    got = await reader.fetch(timeout_ms=0)

    assert offsets(got) == [7, 8, 9, 10, 11]
    assert small_bus.evicted_messages == 7
    # It started at the oldest retained message: nothing was lost to it.
    assert reader.skipped_messages == 0


@pytest.mark.asyncio
async def test_a_reader_that_fell_behind_jumps_forward_and_is_counted(
    small_bus: InProcessBus,
) -> None:
    await small_bus.ensure_topic("events", 1)
    reader = await small_bus.consumer(["events"], ConsumerOptions("ingest"))
    producer = small_bus.producer()
    await producer.send_batch("events", messages(12))

    assert offsets(await reader.fetch(timeout_ms=0)) == [7, 8, 9, 10, 11]
    assert reader.skipped_messages == small_bus.skipped_messages == 7

    await producer.send_batch("events", messages(3, first=12))
    assert offsets(await reader.fetch(timeout_ms=0)) == [12, 13, 14]
    assert reader.skipped_messages == 7


@pytest.mark.asyncio
async def test_retention_by_bytes_keeps_at_least_the_newest_message(
    small_bus: InProcessBus,
) -> None:
    await small_bus.ensure_topic("events", 1)
    producer = small_bus.producer()
    await producer.send_batch("events", messages(4, size=299))  # 300 bytes with the key
    reader = await small_bus.consumer(["events"], ConsumerOptions("a"))
    assert offsets(await reader.fetch(timeout_ms=0)) == [1, 2, 3]

    await producer.send_batch("events", messages(1, first=4, size=5_000))
    later = await small_bus.consumer(["events"], ConsumerOptions("b"))
    assert offsets(await later.fetch(timeout_ms=0)) == [4]


@pytest.mark.asyncio
async def test_a_long_run_keeps_offsets_and_bounded_memory() -> None:
    bus = InProcessBus(retention_messages=10)
    await bus.start()
    await bus.ensure_topic("events", 1)
    producer = bus.producer()
    for first in range(0, 5_000, 100):
        await producer.send_batch("events", messages(100, first=first))

    reader = await bus.consumer(["events"], ConsumerOptions("ingest"))
    got = await reader.fetch(timeout_ms=0)

    assert offsets(got) == list(range(4_990, 5_000))
    assert [message.value.rstrip(b".") for message in got] == [
        str(n).encode() for n in range(4_990, 5_000)
    ]
    # Evicted slots are compacted away; what is left is bounded by the compaction step.
    assert len(bus._topics["events"].logs[0]._entries) <= 2 * 1024 + 10
    await bus.close()


@pytest.mark.asyncio
async def test_keyless_messages_are_dealt_round_robin() -> None:
    bus = InProcessBus()
    await bus.start()
    await bus.ensure_topic("events", 3)
    reader = await bus.consumer(["events"], ConsumerOptions(None))
    await bus.producer().send_batch(
        "events", [OutgoingMessage(key=b"", value=b"%d" % n) for n in range(9)]
    )

    got = await reader.fetch(timeout_ms=0)

    assert sorted(message.partition for message in got) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(message.key is None for message in got)
    await bus.close()


@pytest.mark.asyncio
async def test_members_split_round_robin_and_keep_what_stays_theirs() -> None:
    bus = InProcessBus()
    await bus.start()
    await bus.ensure_topic("events", 7)
    first, second, third = [
        await bus.consumer(["events"], ConsumerOptions("ingest")) for _ in range(3)
    ]

    def owned(member: InProcessConsumer) -> list[int]:
        return sorted(tp.partition for tp in member.assignment())

    assert [owned(first), owned(second), owned(third)] == [[0, 3, 6], [1, 4], [2, 5]]
    keyless = [OutgoingMessage(key=b"", value=b"%d" % n) for n in range(70)]
    await bus.producer().send_batch("events", keyless)  # ten per partition
    assert len(await first.fetch(timeout_ms=0)) == 30
    assert len(await second.fetch(timeout_ms=0)) == 20
    await first.commit({TopicPartition("events", 3): 10})

    await third.close()

    assert [owned(first), owned(second)] == [[0, 2, 4, 6], [1, 3, 5]]
    # Partitions a member keeps go on where it was. One that moves starts at the group's
    # commit: 2 and 5 (third read nothing) and 4 (second read it, never committed) come
    # again from the start, 3 (committed by first) does not.
    again = await first.fetch(timeout_ms=0)
    assert sorted({m.partition for m in again}) == [2, 4] and len(again) == 20
    moved = await second.fetch(timeout_ms=0)
    assert {m.partition for m in moved} == {5} and len(moved) == 10
    with pytest.raises(BusError, match="not assigned"):
        await first.commit({TopicPartition("events", 3): 10})
    await bus.close()


@pytest.mark.asyncio
async def test_members_get_only_the_topics_they_subscribed() -> None:
    bus = InProcessBus()
    await bus.start()
    await bus.ensure_topic("events", 2)
    await bus.ensure_topic("dead_letters", 2)
    narrow = await bus.consumer(["events"], ConsumerOptions("g"))
    wide = await bus.consumer(["events", "dead_letters"], ConsumerOptions("g"))

    assert {tp.topic for tp in narrow.assignment()} == {"events"}
    assert {tp.topic for tp in wide.assignment()} >= {"dead_letters"}
    assert len(narrow.assignment() | wide.assignment()) == 4
    await bus.close()


@pytest.mark.asyncio
async def test_the_bus_refuses_work_before_start_after_close_and_for_unknown_topics() -> None:
    bus = InProcessBus()
    with pytest.raises(BusError, match="not started"):
        await bus.ensure_topic("events", 1)
    await bus.start()
    with pytest.raises(BusError, match="unknown topic"):
        await bus.producer().send_batch("events", [OutgoingMessage(b"k", b"v")])
    with pytest.raises(BusError, match="unknown topic"):
        await bus.consumer(["events"], ConsumerOptions(None))
    with pytest.raises(TypeError):
        await bus.consumer("events", ConsumerOptions(None))
    with pytest.raises(ValueError, match="start"):
        await bus.consumer(["events"], ConsumerOptions("g", start="beginning"))

    await bus.close()
    with pytest.raises(BusError, match="closed"):
        await bus.start()


@pytest.mark.asyncio
async def test_closing_the_bus_wakes_a_waiting_fetch_with_an_error() -> None:
    bus = InProcessBus()
    await bus.start()
    await bus.ensure_topic("events", 1)
    reader = await bus.consumer(["events"], ConsumerOptions("g"))
    waiting = asyncio.ensure_future(reader.fetch(timeout_ms=30_000))
    done, _ = await asyncio.wait({waiting}, timeout=0.05)
    assert not done

    await bus.close()

    with pytest.raises(BusError, match="closed"):
        await asyncio.wait_for(waiting, timeout=1)


@pytest.mark.asyncio
async def test_a_full_bus_refuses_what_would_evict_uncommitted_messages_of_a_group() -> None:
    bus = InProcessBus(retention_messages=5)
    await bus.start()
    await bus.ensure_topic("events", 1)
    producer = bus.producer()
    ingest = await bus.consumer(["events"], ConsumerOptions("ingest"))
    await producer.send_batch("events", messages(5))
    with pytest.raises(BusError, match="bus full"):
        await producer.send_batch("events", messages(1, first=5))
    got = await ingest.fetch(timeout_ms=0)
    assert offsets(got) == [0, 1, 2, 3, 4]  # nothing was lost or half-appended
    await ingest.commit({TopicPartition("events", 0): 3})
    await producer.send_batch("events", messages(3, first=5))
    with pytest.raises(BusError):
        await producer.send_batch("events", messages(1, first=8))
    # A group-less reader (the realtime hub) never holds the producer back.
    hub = await bus.consumer(["events"], ConsumerOptions(None))
    await ingest.commit({TopicPartition("events", 0): 8})
    await producer.send_batch("events", messages(3, first=8))
    assert offsets(await hub.fetch(timeout_ms=0)) == [8, 9, 10]
    await bus.close()
