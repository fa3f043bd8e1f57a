"""The ingest consumer: bus -> warehouse, committing offsets only after the write.

Every hop before this one is at least once, and so is this one: a crash between the
warehouse write and the commit replays the batch, and the sink skips the event ids it
already holds. Messages that cannot be decoded go to the dead-letter topic with the error
and are committed, so one bad message never blocks a partition.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from data_plane.bus.base import (
    BusConsumer,
    BusError,
    BusMessage,
    BusProducer,
    ConsumerOptions,
    EventBus,
    TopicPartition,
)
from data_plane.ingest.decoding import decode, next_offsets
from data_plane.ingest.metrics import IngestMetrics
from data_plane.settings import DataPlaneSettings
from data_plane.warehouse.base import WarehouseError
from data_plane.warehouse.event_sink import EventSink

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
#: How often finished minutes' viewer counts are written.
FINISH_MINUTES_EVERY_S = 5.0


class IngestConsumer:
    def __init__(
        self,
        settings: DataPlaneSettings,
        bus: EventBus,
        sink: EventSink,
        metrics: IngestMetrics,
        *,
        consumer_extra: dict[str, object] | None = None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._sink = sink
        self._metrics = metrics
        self._extra = consumer_extra or {}
        self._consumer: BusConsumer | None = None
        self._dead_letters: BusProducer = bus.producer()
        self.ready = asyncio.Event()

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
        self.ready.set()
        last_finish = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - last_finish >= FINISH_MINUTES_EVERY_S:
                    last_finish = time.monotonic()
                    try:
                        await self._sink.finish_minutes()
                    except WarehouseError as exc:
                        logger.warning("could not write finished viewer counts: %s", exc)
                try:
                    messages = await consumer.fetch(timeout_ms=settings.ingest_max_wait_ms)
                except BusError as exc:
                    logger.warning("ingest fetch failed: %s", exc)
                    await _pause(stop, 1.0)
                    continue
                if not messages:
                    continue
                if not await self._process(messages, stop):
                    return
                try:
                    await consumer.commit(next_offsets(messages))
                except BusError as exc:
                    # Lost the partitions in a rebalance or the broker is away: the batch
                    # is written, so its redelivery is deduplicated by the sink.
                    self._metrics.commit_failures.inc()
                    logger.warning("ingest commit failed: %s", exc)
        finally:
            self._consumer = None
            await consumer.close()

    async def _process(self, messages: Sequence[BusMessage], stop: asyncio.Event) -> bool:
        """Writes one fetched batch; False when asked to stop before it was written."""
        decoded = decode(messages)
        backoff = 0.2
        while True:
            try:
                if decoded.dead_letters:
                    await self._dead_letters.send_batch(
                        self._settings.dead_letter_topic, decoded.dead_letters
                    )
                    self._metrics.dead_letters.inc(len(decoded.dead_letters))
                    logger.warning(
                        "%d undecodable messages dead-lettered", len(decoded.dead_letters)
                    )
                    decoded = type(decoded)(events=decoded.events, dead_letters=[])
                if decoded.events:
                    result = await self._sink.write(decoded.events)
                    self._metrics.inserted.inc(result.inserted)
                    self._metrics.duplicates.inc(result.duplicates)
                self._metrics.batches.inc()
                return True
            except (WarehouseError, BusError) as exc:
                self._metrics.write_failures.inc()
                logger.warning("ingest write failed, retrying in %.1f s: %s", backoff, exc)
                if await _pause(stop, backoff * random.uniform(0.8, 1.2)):
                    return False
                backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleeps unless asked to stop; True when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
