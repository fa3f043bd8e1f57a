"""The bus contract the ingress, the ingest and the realtime hub rely on, checked on both
implementations: the in-process bus and Kafka (tansu)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import defaultdict

import pytest

from data_plane.bus.base import (
    BusConsumer,
    BusError,
    BusMessage,
    EventBus,
    OutgoingMessage,
    TopicPartition,
)
from data_plane.bus.kafka import KafkaBus
from data_plane.bus.memory import InProcessBus
from tests.data_plane.bus.backends import BACKENDS, MakeOptions
from tests.harness.kafka import TansuBroker

QUIET_MS = 300
#: Only to stop waiting on a broken build, far above any timeout under test: a contract
#: asserts what a call returns, not how fast (the benchmarks measure that).
HANG_S = 30.0


async def drain(consumer: BusConsumer, count: int, timeout_s: float = 15.0) -> list[BusMessage]:
    """Fetches until ``count`` messages came or the time is up (then returns fewer)."""
    got: list[BusMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += await consumer.fetch(timeout_ms=200)
    return got


async def settle(
    members: list[BusConsumer], partitions: frozenset[TopicPartition], timeout_s: float = 30.0
) -> list[frozenset[TopicPartition]]:
    """Waits until the members own every partition exactly once, each some."""
    deadline = time.monotonic() + timeout_s
    while True:
        owned = [member.assignment() for member in members]
        split = sum(len(mine) for mine in owned) == len(partitions)
        if split and all(owned) and frozenset().union(*owned) == partitions:
            return owned
        if time.monotonic() > deadline:
            raise AssertionError(f"the group never settled: {owned}")
        await asyncio.sleep(0.05)


def numbered(count: int, keys: int, first: int = 0) -> list[OutgoingMessage]:
    """Messages whose value is their number, over ``keys`` stream keys."""
    return [
        OutgoingMessage(key=f"stream-{n % keys}".encode(), value=str(n).encode())
        for n in range(first, first + count)
    ]


def values(messages: list[BusMessage]) -> list[int]:
    return [int(message.value) for message in messages]


def partitions_of(topic: str, count: int) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(topic, index) for index in range(count))


@pytest.mark.asyncio
async def test_messages_come_back_in_order_per_partition(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 3)
    reader = await bus.consumer([topic], options(None))
    sent = numbered(90, keys=7)
    producer = bus.producer()
    await producer.send_batch(topic, sent[:45])
    await producer.send_batch(topic, sent[45:])

    got = await drain(reader, 90)

    assert sorted(values(got)) == list(range(90))
    by_partition: dict[int, list[BusMessage]] = defaultdict(list)
    for message in got:
        by_partition[message.partition].append(message)
    for messages in by_partition.values():
        assert [m.offset for m in messages] == list(range(len(messages)))
        assert values(messages) == sorted(values(messages))
    await reader.close()


@pytest.mark.asyncio
async def test_concurrent_sends_all_arrive_each_in_order_per_key(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 3)
    reader = await bus.consumer([topic], options(None))
    producer = bus.producer()
    # Ten callers at once (as the ingress's concurrent requests), each sending its own
    # numbers in order over the same five keys.
    sends = [numbered(20, keys=5, first=100 * caller) for caller in range(10)]

    await asyncio.gather(*(producer.send_batch(topic, sent) for sent in sends))
    got = await drain(reader, 200)

    assert sorted(values(got)) == sorted(values_sent := [int(m.value) for s in sends for m in s])
    assert len(values_sent) == 200
    for caller in range(10):
        for key in range(5):
            mine = [
                v
                for m in got
                if m.key == f"stream-{key}".encode()
                if 100 * caller <= (v := int(m.value)) < 100 * (caller + 1)
            ]
            assert mine == sorted(mine) and len(mine) == 4
    await reader.close()


@pytest.mark.asyncio
async def test_the_same_key_always_lands_on_the_same_partition(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 4)
    reader = await bus.consumer([topic], options(None))
    producer = bus.producer()
    for first in (0, 40, 80):
        await producer.send_batch(topic, numbered(40, keys=12, first=first))

    got = await drain(reader, 120)

    assert len(got) == 120
    homes: dict[bytes | None, set[int]] = defaultdict(set)
    for message in got:
        homes[message.key].add(message.partition)
    assert len(homes) == 12
    assert all(len(partitions) == 1 for partitions in homes.values())
    assert len(set().union(*homes.values())) > 1, "twelve keys should not share one partition"
    await reader.close()


@pytest.mark.asyncio
async def test_keys_headers_and_values_round_trip(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 2)
    reader = await bus.consumer([topic], options(None))
    headers = (("tenant_id", b"tenant-1"), ("blob", bytes(range(256))), ("tenant_id", b"again"))
    before_ms = int(time.time() * 1000)
    await bus.producer().send_batch(
        topic,
        [
            OutgoingMessage(key=b"\x00key\xff", value=b"with headers", headers=headers),
            OutgoingMessage(key=b"", value=b"keyless"),
            OutgoingMessage(key=b"k", value=b""),
        ],
    )

    got = {message.value: message for message in await drain(reader, 3)}

    assert set(got) == {b"with headers", b"keyless", b""}
    full = got[b"with headers"]
    assert full.topic == topic
    assert full.key == b"\x00key\xff"
    assert full.headers == headers
    assert full.header("tenant_id") == b"tenant-1"
    assert full.header("missing") is None
    assert before_ms - 5_000 <= full.timestamp_ms <= int(time.time() * 1000) + 5_000
    assert got[b"keyless"].key is None
    assert got[b"keyless"].headers == ()
    assert got[b""].key == b"k"
    await reader.close()


@pytest.mark.asyncio
async def test_a_group_resumes_from_its_committed_offset(
    bus: EventBus, options: MakeOptions, topic: str, group: str
) -> None:
    await bus.ensure_topic(topic, 1)
    producer = bus.producer()
    await producer.send_batch(topic, numbered(10, keys=1))
    first = await bus.consumer([topic], options(group))
    got = await drain(first, 10)
    assert values(got) == list(range(10))
    # Processed up to number 5 only, then went away.
    await first.commit({TopicPartition(topic, 0): got[5].offset + 1})
    await first.close()
    await producer.send_batch(topic, numbered(5, keys=1, first=10))

    # A commit wins over start="latest".
    second = await bus.consumer([topic], options(group, start="latest"))
    rest = await drain(second, 9)

    assert values(rest) == list(range(6, 15))
    assert await second.fetch(timeout_ms=QUIET_MS) == []
    await second.close()


@pytest.mark.asyncio
async def test_uncommitted_messages_go_to_the_next_member(
    bus: EventBus, options: MakeOptions, topic: str, group: str
) -> None:
    await bus.ensure_topic(topic, 2)
    await bus.producer().send_batch(topic, numbered(20, keys=5))
    first = await bus.consumer([topic], options(group))
    seen = await drain(first, 20)
    assert len(seen) == 20
    await first.close()  # without committing: as if it crashed mid-batch

    second = await bus.consumer([topic], options(group))
    again = await drain(second, 20)

    assert {(m.partition, m.offset) for m in again} == {(m.partition, m.offset) for m in seen}
    await second.close()


@pytest.mark.asyncio
async def test_two_members_split_the_partitions_and_see_each_message_once(
    bus: EventBus, options: MakeOptions, topic: str, group: str
) -> None:
    await bus.ensure_topic(topic, 4)
    everything = partitions_of(topic, 4)
    first = await bus.consumer([topic], options(group))
    second = await bus.consumer([topic], options(group))
    owned = await settle([first, second], everything)
    await bus.producer().send_batch(topic, numbered(200, keys=40))

    received: dict[int, list[BusMessage]] = {0: [], 1: []}

    async def pump(index: int, member: BusConsumer) -> None:
        deadline = time.monotonic() + 15
        while sum(map(len, received.values())) < 200 and time.monotonic() < deadline:
            received[index] += await member.fetch(timeout_ms=200)

    await asyncio.gather(pump(0, first), pump(1, second))

    every = received[0] + received[1]
    assert sorted(values(every)) == list(range(200))
    for index, messages in received.items():
        assert messages, "both members should have had work"
        assert {TopicPartition(m.topic, m.partition) for m in messages} <= owned[index]
    assert [first.assignment(), second.assignment()] == owned
    # The other member's partition is not ours to commit.
    with pytest.raises(BusError):
        await first.commit({next(iter(owned[1])): 0})
    await first.close()
    await second.close()


@pytest.mark.asyncio
async def test_a_groupless_consumer_sees_only_what_came_after_it(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 2)
    producer = bus.producer()
    # Several messages per key, so the old ones sit in multi-record batches.
    await producer.send_batch(topic, numbered(12, keys=2))
    reader = await bus.consumer([topic], options(None))
    assert reader.assignment() == partitions_of(topic, 2)
    await producer.send_batch(topic, numbered(6, keys=3, first=100))

    got = await drain(reader, 6)

    assert sorted(values(got)) == list(range(100, 106))
    assert await reader.fetch(timeout_ms=QUIET_MS) == []
    await reader.commit({TopicPartition(topic, 0): 1})  # nothing to commit: a no-op
    await reader.close()


@pytest.mark.asyncio
async def test_fetch_returns_nothing_after_its_timeout(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 1)
    reader = await bus.consumer([topic], options(None))

    started = time.monotonic()
    assert await asyncio.wait_for(reader.fetch(timeout_ms=QUIET_MS), HANG_S) == []
    waited = time.monotonic() - started

    assert waited >= QUIET_MS / 1000 * 0.8, "the fetch returned before its timeout"
    await reader.close()


@pytest.mark.asyncio
async def test_a_waiting_fetch_returns_when_a_message_arrives(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 1)
    reader = await bus.consumer([topic], options(None))
    # The fetch's own timeout is twice the deadline: only a fetch woken by the message
    # returns within it.
    waiting = asyncio.ensure_future(reader.fetch(timeout_ms=int(HANG_S * 2000)))
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done, "fetch returned before anything was sent"

    await bus.producer().send_batch(topic, numbered(1, keys=1))
    got = await asyncio.wait_for(waiting, HANG_S)

    assert values(got) == [0]
    await reader.close()


@pytest.mark.asyncio
async def test_fetch_returns_at_most_max_records(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 2)
    reader = await bus.consumer([topic], options(None, max_records=7))
    await bus.producer().send_batch(topic, numbered(40, keys=4))

    sizes: list[int] = []
    got: list[BusMessage] = []
    deadline = time.monotonic() + 15
    while len(got) < 40 and time.monotonic() < deadline:
        batch = await reader.fetch(timeout_ms=200)
        sizes.append(len(batch))
        got += batch

    assert sorted(values(got)) == list(range(40))
    assert max(sizes) <= 7
    await reader.close()


@pytest.mark.asyncio
async def test_a_closed_consumer_refuses_to_fetch(
    bus: EventBus, options: MakeOptions, topic: str
) -> None:
    await bus.ensure_topic(topic, 1)
    reader = await bus.consumer([topic], options(None))
    await reader.close()
    await reader.close()  # twice is fine

    assert reader.assignment() == frozenset()
    with pytest.raises(BusError):
        await reader.fetch(timeout_ms=10)


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_send_batch_to_a_broker_that_is_gone_raises(
    backend: str, request: pytest.FixtureRequest, topic: str
) -> None:
    broker: TansuBroker | None = None
    gone: EventBus
    if backend == "memory":
        gone = InProcessBus()
    else:
        broker = request.getfixturevalue("private_tansu")
        gone = KafkaBus(broker.bootstrap, send_timeout_ms=2_000)
    await gone.start()
    try:
        await gone.ensure_topic(topic, 1)
        producer = gone.producer()
        await producer.send_batch(topic, numbered(3, keys=1))
        if broker is None:
            await gone.close()
        else:
            broker.kill()

        # It raises rather than hanging (the send timeout is 2 s, the deadline far above).
        with pytest.raises(BusError):
            await asyncio.wait_for(producer.send_batch(topic, numbered(3, keys=1)), HANG_S)
    finally:
        await gone.close()


@pytest.mark.asyncio
async def test_a_kafka_bus_without_a_broker_fails_to_start_cleanly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening
        bus = KafkaBus(nobody, send_timeout_ms=2_000)
        with pytest.raises(BusError, match="connecting to Kafka"):
            await bus.start()
    with pytest.raises(BusError, match="not started"):
        await bus.producer().send_batch("events", numbered(1, keys=1))
    await bus.close()
