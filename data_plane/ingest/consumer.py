"""The ingest consumer: bus -> warehouse, committing offsets only after the write.

Every hop before this one is at least once, and so is this one: a crash between the
warehouse write and the commit replays the batch, and the sink skips the event ids it
already holds. Messages that cannot be decoded go to the dead-letter topic with the error
and are committed, so one bad message never blocks a partition. How a batch is decoded is
its writer's business (`batch_writer.py`): the consumer fetches, hands fetches to the
writer, retries its writes and commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from data_plane.bus.base import (
    BusConsumer,
    BusError,
    BusMessage,
    ConsumerOptions,
    EventBus,
    TopicPartition,
)
from data_plane.ingest.batch_writer import BatchWriter, FetchedBatch
from data_plane.ingest.decoding import next_offsets
from data_plane.ingest.fetched_batches import FetchedBatches
from data_plane.ingest.metrics import IngestMetrics
from data_plane.settings import DataPlaneSettings
from data_plane.warehouse.base import WarehouseError
from data_plane.warehouse.event_sink import EventSink
from data_plane.worker_processes import WorkerUnavailableError

logger = logging.getLogger(__name__)

#: Fetched batches, each with the work its writer started on it ahead.
_Fetched = FetchedBatches[BusMessage, FetchedBatch]

MAX_BACKOFF_S = 10.0
#: A write takes at most this many fetches' worth of messages (ingest_max_records each).
WRITE_FETCHES = 3


class IngestConsumer:
    def __init__(
        self,
        settings: DataPlaneSettings,
        bus: EventBus,
        sink: EventSink,
        writer: BatchWriter,
        metrics: IngestMetrics,
        *,
        consumer_extra: dict[str, object] | None = None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._sink = sink
        self._metrics = metrics
        self._extra = consumer_extra or {}
        self._writer = writer
        self._consumer: BusConsumer | None = None
        self.ready = asyncio.Event()

    @property
    def writer(self) -> BatchWriter:
        return self._writer

    def assignment(self) -> frozenset[TopicPartition]:
        return self._consumer.assignment() if self._consumer else frozenset()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self._settings
        consumer = await self._bus.consumer(
            [settings.events_topic],
            ConsumerOptions(
                group_id=settings.ingest_group,
                start="earliest",
                max_records=settings.ingest_max_records,
                extra=dict(self._extra),
            ),
        )
        self._consumer = consumer
        fetched: _Fetched = FetchedBatches(settings.ingest_max_records * WRITE_FETCHES)
        try:
            await self._writer.start()
            self.ready.set()
            reader = asyncio.create_task(self._read(consumer, fetched, stop), name="ingest-read")
            try:
                await self._write(consumer, fetched, reader, stop)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                for _, batch in await fetched.take():
                    await batch.discard()
        finally:
            self._consumer = None
            await consumer.close()
            await self._writer.close()

    async def _read(self, consumer: BusConsumer, fetched: _Fetched, stop: asyncio.Event) -> None:
        """Fetches, and starts decoding, ahead of the writer (up to a write's worth of
        messages), so that decoding on the workers overlaps the writer's lookups and
        inserts and the bus's client keeps fetching while a write runs."""
        while not stop.is_set():
            try:
                messages = await consumer.fetch(timeout_ms=self._settings.ingest_max_wait_ms)
            except BusError as exc:
                logger.warning("ingest fetch failed: %s", exc)
                await _pause(stop, 1.0)
                continue
            if messages:
                batch = self._writer.fetched(messages)
                try:
                    await fetched.put(messages, batch)
                except asyncio.CancelledError:
                    # Stopped while the writer was behind: this batch has no owner left.
                    batch.cancel()
                    raise

    async def _write(
        self,
        consumer: BusConsumer,
        fetched: _Fetched,
        reader: asyncio.Task[None],
        stop: asyncio.Event,
    ) -> None:
        """Writes what was fetched, in fetch order, and commits after each write.

        Under load, writes start at most every `ingest_min_write_interval_ms`: what is
        fetched meanwhile is written together, unless a write's worth of messages
        (WRITE_FETCHES fetches) is waiting first. A write's cost in the warehouse is
        largely per write (planning its statements, a part in every table, merging those
        parts), so fewer, larger writes spend less per event (docs/benchmarks-history.md,
        2026-12-06 (later)).
        An idle ingest writes a batch as soon as it is fetched."""
        settings = self._settings
        wait_s = settings.ingest_max_wait_ms / 1000
        count_every_s = settings.ingest_count_viewers_every_ms / 1000
        interval_s = settings.ingest_min_write_interval_ms / 1000
        last_count = last_write = 0.0
        held: frozenset[TopicPartition] = frozenset()
        while not stop.is_set():
            if time.monotonic() - last_count >= count_every_s:
                last_count = time.monotonic()
                try:
                    await self._sink.count_viewers()
                except WarehouseError as exc:
                    logger.warning("could not write the viewer counts: %s", exc)
            if not await fetched.wait(wait_s):
                if reader.done():
                    reader.result()  # the reader's failure is the consumer's
                    return
                continue
            await _linger(fetched, last_write + interval_s, wait_s, stop)
            batches = await fetched.take()
            last_write = time.monotonic()
            messages = [message for batch, _ in batches for message in batch]
            if not await self._process([batch for _, batch in batches], stop):
                return
            try:
                await consumer.commit(next_offsets(messages))
            except BusError as exc:
                # Lost the partitions in a rebalance or the broker is away: the batch
                # is written, so its redelivery is deduplicated by the sink.
                self._metrics.commit_failures.inc()
                logger.warning("ingest commit failed: %s", exc)
            if (now_held := consumer.assignment()) != held:
                # Once per change of assignment, so that an operator (and the fault
                # tests) can see which member writes which partitions.
                held = now_held
                logger.info(
                    "ingest has written and holds partitions [%s]",
                    ",".join(str(p) for p in sorted(tp.partition for tp in held)),
                )

    async def _process(self, batches: Sequence[FetchedBatch], stop: asyncio.Event) -> bool:
        """Writes fetched batches as one, retrying until it is written; False when asked
        to stop before."""
        backoff = 0.2
        while True:
            try:
                written = await self._writer.write(batches)
            except (WarehouseError, BusError, WorkerUnavailableError) as exc:
                self._metrics.write_failures.inc()
                logger.warning("ingest write failed, retrying in %.1f s: %s", backoff, exc)
                if await _pause(stop, backoff * random.uniform(0.8, 1.2)):
                    return False
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._metrics.inserted.inc(written.inserted)
            self._metrics.duplicates.inc(written.duplicates)
            self._metrics.batches.inc()
            return True


async def _linger(fetched: _Fetched, until: float, step_s: float, stop: asyncio.Event) -> None:
    """Waits until the monotonic time `until`, a write's worth of messages or `stop`."""
    while not stop.is_set():
        left_s = until - time.monotonic()
        if left_s <= 0 or await fetched.wait(min(left_s, step_s), until_full=True):
            return


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps unless asked to stop; True when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
