"""The dead-letter topic: where a message the ingest cannot decode goes, with the error
in a header (see `decoding.dead_letters_of`), so one bad message never blocks a
partition."""

from __future__ import annotations

import logging

from data_plane.bus.base import BusProducer, OutgoingMessage
from data_plane.ingest.metrics import IngestMetrics

logger = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, producer: BusProducer, topic: str, metrics: IngestMetrics) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics

    async def send(self, letters: list[OutgoingMessage]) -> None:
        """Puts `letters` on the topic (acknowledged); raises BusError."""
        if letters:
            await self._producer.send_batch(self._topic, letters)
            self._metrics.dead_letters.inc(len(letters))
            logger.warning("%d undecodable messages dead-lettered", len(letters))
