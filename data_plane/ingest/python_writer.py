"""The Python-decoding writer: Python decodes each fetch into Arrow rows (on worker
processes, or on the loop with none, see `decoder_pool.py`) while earlier fetches are
written, and the sink inserts the rows. It serves a ClickHouse server, and the batches
the engine refuses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pyarrow as pa

from data_plane.bus.base import BusMessage
from data_plane.ingest.batch_writer import FetchedBatch, Written
from data_plane.ingest.dead_letters import DeadLetters
from data_plane.ingest.decoder_pool import DecoderPool
from data_plane.ingest.decoding import Decoded
from data_plane.warehouse.event_sink import EventSink


class _Decoding:
    """A fetch, its decoding (started ahead, or not yet), and how far its write got."""

    def __init__(self, messages: Sequence[BusMessage], task: asyncio.Task[Decoded] | None) -> None:
        self.messages = messages
        self.task = task
        self.decoded: Decoded | None = None
        self.dead_lettered = False

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def discard(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class PythonBatchWriter:
    def __init__(self, sink: EventSink, dead_letters: DeadLetters, decoder: DecoderPool) -> None:
        self._sink = sink
        self._dead_letters = dead_letters
        self._decoder = decoder

    async def start(self) -> None:
        await self._decoder.start()

    def fetched(self, messages: Sequence[BusMessage]) -> _Decoding:
        return _Decoding(messages, asyncio.create_task(self._decoder.decode(messages)))

    def unstarted(self, messages: Sequence[BusMessage]) -> _Decoding:
        """A batch whose decoding starts when it is written (on the loop, with no workers)."""
        return _Decoding(messages, None)

    async def _decoded(self, batch: _Decoding) -> Decoded:
        if batch.decoded is None:
            # The decoding started ahead, and after a worker died, anew.
            task, batch.task = batch.task, None
            batch.decoded = await (
                task if task is not None else self._decoder.decode(batch.messages)
            )
        return batch.decoded

    async def write(self, batches: Sequence[FetchedBatch]) -> Written:
        own = [_own(batch) for batch in batches]
        parts = [await self._decoded(batch) for batch in own]
        await self._dead_letters.send(
            [
                letter
                for batch, part in zip(own, parts, strict=True)
                if not batch.dead_lettered
                for letter in part.dead_letters
            ]
        )
        for batch in own:
            batch.dead_lettered = True
        tables = [part.rows for part in parts if part.rows.num_rows]
        if not tables:
            return Written(inserted=0, duplicates=0)
        rows = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        result = await self._sink.write_rows(rows)
        return Written(inserted=result.inserted, duplicates=result.duplicates)

    def worker_pids(self) -> list[int]:
        return self._decoder.worker_pids()

    async def close(self) -> None:
        await self._decoder.close()


def _own(batch: FetchedBatch) -> _Decoding:
    if not isinstance(batch, _Decoding):
        raise TypeError(f"not a batch of this writer: {batch!r}")
    return batch
