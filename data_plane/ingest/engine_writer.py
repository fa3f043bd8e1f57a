"""The engine-decoding writer: the warehouse's engine decodes the messages and writes
their events itself (chDB reads the protobuf in C++ with the GIL released, see
warehouse/engine_decoding.py), and names the messages it found problems with. A batch
the engine refuses (a message that is no EventBatch, or holds a kind its header leaves
out) is decoded in Python, on the loop, which finds the culprit."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from data_plane.bus.base import BusMessage
from data_plane.ingest.batch_writer import FetchedBatch, Written
from data_plane.ingest.dead_letters import DeadLetters
from data_plane.ingest.decoder_pool import DecoderPool
from data_plane.ingest.decoding import dead_letters_of, kinds_of, payloads_of
from data_plane.ingest.python_writer import PythonBatchWriter
from data_plane.warehouse.engine_decoding import BatchRefusedError
from data_plane.warehouse.event_sink import EventSink

logger = logging.getLogger(__name__)


class _Messages:
    """A fetch: the engine starts nothing ahead."""

    def __init__(self, messages: Sequence[BusMessage]) -> None:
        self.messages = messages
        #: Set once the engine refused the write holding it: it is decoded in Python.
        self.refused: FetchedBatch | None = None

    def cancel(self) -> None:
        pass

    async def discard(self) -> None:
        pass


class EngineBatchWriter:
    def __init__(self, sink: EventSink, dead_letters: DeadLetters) -> None:
        self._sink = sink
        self._dead_letters = dead_letters
        self._python = PythonBatchWriter(sink, dead_letters, DecoderPool(0))

    async def start(self) -> None:
        await self._python.start()

    def fetched(self, messages: Sequence[BusMessage]) -> _Messages:
        return _Messages(messages)

    async def write(self, batches: Sequence[FetchedBatch]) -> Written:
        own = [_own(batch) for batch in batches]
        if any(batch.refused is not None for batch in own):
            return await self._python.write([batch.refused for batch in own if batch.refused])
        messages = [message for batch in own for message in batch.messages]
        try:
            written = await self._sink.write_messages(payloads_of(messages), kinds_of(messages))
        except BatchRefusedError as exc:
            logger.info("the engine refused a batch, decoding it in Python: %s", exc)
            for batch in own:
                batch.refused = self._python.unstarted(batch.messages)
            return await self._python.write([batch.refused for batch in own if batch.refused])
        # After the write: a retry after a failed send writes nothing twice.
        await self._dead_letters.send(dead_letters_of(messages, written.problems))
        return Written(inserted=written.inserted, duplicates=written.duplicates)

    def worker_pids(self) -> list[int]:
        return []

    async def close(self) -> None:
        await self._python.close()


def _own(batch: FetchedBatch) -> _Messages:
    if not isinstance(batch, _Messages):
        raise TypeError(f"not a batch of this writer: {batch!r}")
    return batch
