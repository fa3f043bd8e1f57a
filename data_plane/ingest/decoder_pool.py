"""Decoding on worker processes, so that the ingest's per-event CPU work (protobuf
parsing, Arrow conversion) runs beside the event loop instead of on it.

The loop that fetches, looks up duplicates, inserts and commits (and, in a single-node
process, also serves the ingress and the API) then spends no per-event Python time on
decoding; at 100k events/s that was about 40% of its core. Workers are spawned, not
forked: the parent holds gRPC and warehouse threads that a fork would copy mid-flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from data_plane.bus.base import BusMessage
from data_plane.ingest.decoding import (
    Decoded,
    DecodedRows,
    Payload,
    decode,
    payloads_of,
    rows_of,
    with_dead_letters,
)

#: Below this many messages a fetch is decoded on one worker (splitting costs more).
_SPLIT_MIN_MESSAGES = 64


class DecoderUnavailableError(Exception):
    """A worker died; the pool is replaced and the batch can be decoded again."""


def _warm() -> bool:
    return True


class DecoderPool:
    """`workers` decoding processes; 0 decodes in this process."""

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self._workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    def worker_pids(self) -> list[int]:
        """The pids of the running workers (for tests and diagnostics)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [pid for pid, process in processes.items() if process.is_alive()]

    async def start(self) -> None:
        """Starts the workers now rather than on the first batch (a spawn and its imports
        take about a second)."""
        if self._workers:
            loop = asyncio.get_running_loop()
            pool = self._pool()
            await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(self._workers)))

    async def decode(self, messages: Sequence[BusMessage]) -> Decoded:
        if not self._workers:
            return decode(messages)
        payloads = payloads_of(messages)
        parts = self._split(payloads)
        loop = asyncio.get_running_loop()
        pool = self._pool()
        try:
            results = await asyncio.gather(
                *(loop.run_in_executor(pool, rows_of, part) for _, part in parts)
            )
        except BrokenProcessPool as exc:
            self._discard()
            raise DecoderUnavailableError(f"a decoding worker died: {exc}") from exc
        return with_dead_letters(messages, _merge(parts, results))

    def _split(self, payloads: list[Payload]) -> list[tuple[int, list[Payload]]]:
        """(offset, part): contiguous parts, one per worker when the fetch is large."""
        if self._workers == 1 or len(payloads) < _SPLIT_MIN_MESSAGES:
            return [(0, payloads)]
        size = -(-len(payloads) // self._workers)
        return [(start, payloads[start : start + size]) for start in range(0, len(payloads), size)]

    def _discard(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )


def _merge(parts: list[tuple[int, list[Payload]]], results: Sequence[DecodedRows]) -> DecodedRows:
    if len(results) == 1:
        return results[0]
    problems = [
        (offset + index, error)
        for (offset, _), result in zip(parts, results, strict=True)
        for index, error in result.problems
    ]
    return DecodedRows(rows=pa.concat_tables([r.rows for r in results]), problems=problems)
