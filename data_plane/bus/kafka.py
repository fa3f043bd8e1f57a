"""The event bus over any Kafka-protocol cluster (Apache Kafka, Redpanda, tansu), through
aiokafka.

Producing waits for ``acks=all``. The producer is not idempotent because tansu refuses
InitProducerId; a retried batch may therefore be written twice, which at-least-once
delivery allows (the warehouse deduplicates by event id). Consumers never auto-commit:
whoever processes the messages commits what it has processed.

Every aiokafka failure surfaces as :class:`BusError` with what was being done and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    IllegalOperation,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.partitioner import DefaultPartitioner  # type: ignore[import-untyped]

from data_plane.bus.base import (
    BusError,
    BusMessage,
    ConsumerOptions,
    OutgoingMessage,
    TopicPartition,
)
from data_plane.bus.grouped_sends import GroupedSends

logger = logging.getLogger(__name__)

Compression = Literal["gzip", "snappy", "lz4", "zstd"]

_STARTS = frozenset({"earliest", "latest"})
_CLIENT_ERRORS = (KafkaError, ConsumerStoppedError, IllegalOperation)


@contextlib.contextmanager
def _as_bus_error(doing: str) -> Iterator[None]:
    try:
        yield
    except BusError:
        raise
    except TimeoutError as exc:
        raise BusError(f"{doing}: no answer in time") from exc
    except _CLIENT_ERRORS as exc:
        reason = str(exc) or "no details"
        raise BusError(f"{doing}: {type(exc).__name__}: {reason}") from exc


def _to_message(record: Any) -> BusMessage:
    return BusMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=tuple((name, value or b"") for name, value in record.headers),
        timestamp_ms=record.timestamp,
    )


class KafkaProducer:
    """Sends through the bus's one shared aiokafka producer; concurrent sends to a topic
    leave in groups (see :mod:`data_plane.bus.grouped_sends`)."""

    def __init__(self, bus: KafkaBus) -> None:
        self._bus = bus

    async def send_batch(self, topic: str, messages: Sequence[OutgoingMessage]) -> None:
        self._bus._ensure_open()
        if not messages:
            return
        doing = f"sending {len(messages)} messages to {topic!r}"
        with _as_bus_error(doing):
            # Bounds the wait for the group ahead as well as this send's own group.
            async with asyncio.timeout(2 * self._bus.send_timeout_ms / 1000):
                await self._bus._sends_to(topic).send(messages)


class _TopicSender:
    """Delivers one topic's groups of messages."""

    def __init__(self, bus: KafkaBus, topic: str) -> None:
        self._bus = bus
        self._topic = topic
        self._partitioner = DefaultPartitioner()
        self._round_robin = itertools.count()

    async def deliver(self, messages: list[OutgoingMessage]) -> None:
        """Builds the record batches per partition itself (``create_batch``) instead of
        calling ``send()`` per message and gathering the futures, which costs more per
        message."""
        producer = self._bus._live_producer()
        topic = self._topic
        doing = f"sending {len(messages)} messages to {topic!r}"
        with _as_bus_error(doing):
            async with asyncio.timeout(self._bus.send_timeout_ms / 1000):
                partitions = sorted(await producer.partitions_for(topic))
                by_partition = self._split(partitions, messages)
                queued = await asyncio.gather(
                    *(
                        self._enqueue(producer, topic, partition, items)
                        for partition, items in by_partition.items()
                    ),
                    return_exceptions=True,
                )
                # Await whatever was queued even when a partition failed, so that no
                # delivery result is left unretrieved.
                deliveries = [d for batch in queued if isinstance(batch, list) for d in batch]
                outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
            for outcome in [*queued, *outcomes]:
                if isinstance(outcome, asyncio.CancelledError):
                    raise BusError(f"{doing}: the producer was closed before delivery")
                if isinstance(outcome, BaseException):
                    raise outcome

    def _split(
        self, partitions: list[int], messages: Sequence[OutgoingMessage]
    ) -> dict[int, list[OutgoingMessage]]:
        # The default partitioner (murmur2, as the Java client) so that other producers
        # put a key on the same partition; keys repeat a lot within a batch.
        by_partition: dict[int, list[OutgoingMessage]] = defaultdict(list)
        known: dict[bytes, int] = {}
        for message in messages:
            if message.key:
                partition = known.get(message.key)
                if partition is None:
                    partition = self._partitioner(message.key, partitions, partitions)
                    known[message.key] = partition
            else:
                partition = partitions[next(self._round_robin) % len(partitions)]
            by_partition[partition].append(message)
        return by_partition

    @staticmethod
    async def _enqueue(
        producer: Any, topic: str, partition: int, messages: list[OutgoingMessage]
    ) -> list[asyncio.Future[Any]]:
        deliveries: list[asyncio.Future[Any]] = []
        batch = producer.create_batch()
        for message in messages:
            record = {
                "key": message.key or None,
                "value": message.value,
                "timestamp": None,
                "headers": list(message.headers),
            }
            if batch.append(**record) is None:
                # Full (max_batch_bytes): hand it over and start the next one. The first
                # record of a batch always fits, however large.
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(**record)
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        return deliveries


async def _stop(producer: Any, within_s: float) -> None:
    """aiokafka's ``stop()`` first waits for every batch on its way, which with an
    unreachable broker lasts until each one's request timeout (an ingress then took 15-45 s
    to exit after SIGTERM): they get `within_s`, then the producer's connections and tasks
    are closed. Nobody was told those batches were delivered, so their senders retry:
    nothing is lost."""
    try:
        await asyncio.wait_for(producer.stop(), within_s)
    except TimeoutError:
        logger.warning("the Kafka producer did not flush within %.1f s; closing anyway", within_s)
        try:
            await asyncio.wait_for(_abandon(producer), within_s)
        except TimeoutError:
            logger.warning("the Kafka producer's tasks did not end within %.1f s", within_s)


async def _abandon(producer: Any) -> None:
    """Ends what `stop()` left running (aiokafka internals, pinned): closing the
    connections fails the requests on their way, so the sender's task, which waits for
    them when cancelled, ends too; the client's close cancels its metadata task; the
    batches never sent fail, which ends the accumulator's close and tells their senders."""
    await producer.client.close()
    if producer._sender is not None:
        await producer._sender.close()
    producer._message_accumulator.fail_all(KafkaError("the producer closed"))


class KafkaConsumer:
    """One aiokafka consumer: a group member, or a group-less reader of every partition."""

    def __init__(self, bus: KafkaBus, consumer: Any, options: ConsumerOptions) -> None:
        self._bus = bus
        self._consumer = consumer
        self.group_id = options.group_id
        self._max_records = options.max_records
        self._closed = False

    def _ensure_open(self) -> None:
        if self._closed:
            raise BusError("the consumer is closed")

    async def fetch(self, timeout_ms: int) -> list[BusMessage]:
        self._ensure_open()
        with _as_bus_error("fetching"):
            batches = await self._consumer.getmany(
                timeout_ms=max(timeout_ms, 0), max_records=self._max_records
            )
        return [_to_message(record) for records in batches.values() for record in records]

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commits for the group; a group-less consumer has nothing to commit (no-op).

        Raises :class:`BusError` when the partitions moved to another member meanwhile.
        """
        self._ensure_open()
        if self.group_id is None or not offsets:
            return
        kafka_offsets = {
            KafkaTopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()
        }
        with _as_bus_error(f"committing offsets of group {self.group_id!r}"):
            await self._consumer.commit(kafka_offsets)

    def assignment(self) -> frozenset[TopicPartition]:
        if self._closed:
            return frozenset()
        return frozenset(
            TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._forget(self)
        with _as_bus_error("closing the consumer"):
            # Sends LeaveGroup: the others need not wait out this member's session.
            await self._consumer.stop()


class KafkaBus:
    """The bus on a Kafka cluster. ``start()`` connects the producer; ``close()`` stops
    it and every consumer this bus made that is still open."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "tidecast-data-plane",
        compression: Compression | None = None,
        linger_ms: int = 0,
        max_batch_bytes: int = 1_000_000,
        send_timeout_ms: int = 30_000,
        replication_factor: int = 1,
        close_timeout_ms: int = 5_000,
    ) -> None:
        """``send_timeout_ms`` bounds one ``send_batch`` (and each broker request of the
        producer and admin client); ``max_batch_bytes`` stays under the brokers' default
        1 MiB message limit. ``linger_ms`` spaces the groups of concurrent sends under
        load (see :class:`GroupedSends`); aiokafka itself gets no linger, because it is
        handed whole batches. ``close_timeout_ms`` bounds the wait for sends still on
        their way when the bus closes."""
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        self.send_timeout_ms = send_timeout_ms
        self.close_timeout_ms = close_timeout_ms
        self._compression = compression
        self._linger_ms = linger_ms
        self._max_batch_bytes = max_batch_bytes
        self._replication_factor = replication_factor
        self._producer: Any = None
        self._consumers: set[KafkaConsumer] = set()
        self._sends: dict[str, GroupedSends[OutgoingMessage]] = {}
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise BusError("the Kafka bus is closed and cannot start again")
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=False,
            compression_type=self._compression,
            linger_ms=0,
            max_batch_size=self._max_batch_bytes,
            request_timeout_ms=self.send_timeout_ms,
        )
        try:
            with _as_bus_error(f"connecting to Kafka at {self.bootstrap_servers}"):
                await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def close(self) -> None:
        self._closed = True
        for consumer in list(self._consumers):
            with contextlib.suppress(BusError):
                await consumer.close()
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                with _as_bus_error("closing the producer"):
                    await _stop(producer, self.close_timeout_ms / 1000)
        finally:
            # The groups on their way failed with the producer; what is left is cancelled.
            for sends in self._sends.values():
                await sends.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise BusError("the Kafka bus is closed")
        if self._producer is None:
            raise BusError("the Kafka bus is not started")

    def _live_producer(self) -> Any:
        self._ensure_open()
        return self._producer

    def _sends_to(self, topic: str) -> GroupedSends[OutgoingMessage]:
        sends = self._sends.get(topic)
        if sends is None:
            sends = self._sends[topic] = GroupedSends(
                _TopicSender(self, topic).deliver,
                closed=lambda: BusError("the Kafka bus was closed before delivery"),
                linger_s=self._linger_ms / 1000,
            )
        return sends

    def _forget(self, consumer: KafkaConsumer) -> None:
        self._consumers.discard(consumer)

    async def ensure_topic(self, topic: str, partitions: int) -> None:
        """Creates the topic; an existing topic keeps its partitions."""
        self._ensure_open()
        if partitions < 1:
            raise ValueError(f"a topic needs at least one partition, not {partitions}")
        doing = f"creating topic {topic!r}"
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            request_timeout_ms=self.send_timeout_ms,
        )
        try:
            with _as_bus_error(doing):
                await admin.start()
                response = await admin.create_topics(
                    [NewTopic(topic, partitions, self._replication_factor)]
                )
        finally:
            await admin.close()
        for answer in response.topic_errors:
            # (topic, error_code[, error_message]) depending on the protocol version
            code, message = answer[1], answer[2] if len(answer) > 2 else None
            if code not in (0, TopicAlreadyExistsError.errno):
                error = for_code(code)
                raise BusError(f"{doing}: {error.__name__}: {message or error.description}")

    def producer(self) -> KafkaProducer:
        return KafkaProducer(self)

    async def consumer(self, topics: Sequence[str], options: ConsumerOptions) -> KafkaConsumer:
        """``options.extra`` goes to AIOKafkaConsumer as is (session_timeout_ms, ...)."""
        self._ensure_open()
        if isinstance(topics, str):
            raise TypeError("topics is a sequence of topic names, not one string")
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        if options.start not in _STARTS:
            raise ValueError(f"start must be 'earliest' or 'latest', not {options.start!r}")
        names = list(dict.fromkeys(topics))
        settings: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "group_id": options.group_id,
            "enable_auto_commit": False,
            # A group-less reader that falls off the log must not replay it from the start.
            "auto_offset_reset": options.start if options.group_id is not None else "latest",
            **options.extra,
        }
        subscribed = names if options.group_id is not None else []
        consumer = AIOKafkaConsumer(*subscribed, **settings)
        doing = f"starting a consumer of {names} (group {options.group_id!r})"
        try:
            with _as_bus_error(doing):
                # With a group this returns once the group has given it partitions.
                await consumer.start()
                if options.group_id is None:
                    await self._read_from_end(consumer, names, doing)
        except BaseException:
            await consumer.stop()
            raise
        wrapper = KafkaConsumer(self, consumer, options)
        self._consumers.add(wrapper)
        return wrapper

    async def _read_from_end(self, consumer: Any, names: list[str], doing: str) -> None:
        await consumer.topics()  # refreshes metadata for every topic
        partitions = []
        for name in names:
            found = consumer.partitions_for_topic(name)
            if not found:
                raise BusError(f"{doing}: unknown topic {name!r}")
            partitions += [KafkaTopicPartition(name, index) for index in sorted(found)]
        consumer.assign(partitions)
        # Resolve the end offsets now, not at the first fetch: a message produced after
        # consumer() returns must be seen.
        if not await consumer.seek_to_end(*partitions):
            raise BusError(f"{doing}: the end offsets were not found in time")
        await self._correct_end_offsets(consumer, partitions)

    async def _correct_end_offsets(self, consumer: Any, partitions: list[Any]) -> None:
        """tansu 0.6 answers ListOffsets(latest) with the last record batch's base offset
        + 1 instead of its last offset + 1, so the end it reports can lie inside the last
        batch. A fetch response's high watermark is right: fetch the record before the
        reported end (normally still there, so the answer is immediate) and move to the
        high watermark if it lies further. Harmless, one round trip, on Kafka proper."""
        reported = {tp: await consumer.position(tp) for tp in partitions}
        behind = [tp for tp, end in reported.items() if end > 0]
        for tp in behind:
            consumer.seek(tp, reported[tp] - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_timeout_ms / 1000
        while any(consumer.highwater(tp) is None for tp in behind):
            remaining_ms = int((deadline - loop.time()) * 1000)
            if remaining_ms <= 0:
                raise BusError("starting a group-less consumer: no fetch answer in time")
            await consumer.getmany(*behind, timeout_ms=min(remaining_ms, 500))
        for tp in behind:
            consumer.seek(tp, max(reported[tp], consumer.highwater(tp)))
