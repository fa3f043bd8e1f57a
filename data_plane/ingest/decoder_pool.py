"""Decoding on worker processes, so that the ingest's per-event CPU work (protobuf
parsing, Arrow conversion) runs beside the event loop instead of on it.

The loop that fetches, looks up duplicates, inserts and commits (and, in a single-node
process, also serves the ingress and the API) then spends no per-event Python time on
decoding (docs/benchmarks-history.md, 2026-12-04). (A chDB warehouse decodes
the messages itself, see the consumer; this serves a ClickHouse server.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pyarrow as pa

from data_plane.bus.base import BusMessage
from data_plane.ingest.decoding import (
    Decoded,
    DecodedRows,
    Payload,
    payloads_of,
    rows_of,
    with_dead_letters,
)
from data_plane.worker_processes import WorkerProcesses

#: Below this many messages a fetch is decoded on one worker (splitting costs more).
_SPLIT_MIN_MESSAGES = 64


class DecoderPool:
    """`workers` decoding processes; 0 decodes in this process."""

    def __init__(self, workers: int) -> None:
        self._processes = WorkerProcesses(workers)

    @property
    def workers(self) -> int:
        return self._processes.workers

    def worker_pids(self) -> list[int]:
        """The pids of the running workers (for tests and diagnostics)."""
        return self._processes.pids()

    async def start(self) -> None:
        await self._processes.start()

    async def decode(self, messages: Sequence[BusMessage]) -> Decoded:
        payloads = payloads_of(messages)
        parts = self._split(payloads)
        # A worker's death raises WorkerUnavailableError: the pool is replaced, and the
        # batch can be decoded again.
        results = await asyncio.gather(*(self._processes.run(rows_of, part) for _, part in parts))
        return with_dead_letters(messages, _merge(parts, results))

    def _split(self, payloads: list[Payload]) -> list[tuple[int, list[Payload]]]:
        """(offset, part): contiguous parts, one per worker when the fetch is large."""
        if self.workers <= 1 or len(payloads) < _SPLIT_MIN_MESSAGES:
            return [(0, payloads)]
        size = -(-len(payloads) // self.workers)
        return [(start, payloads[start : start + size]) for start in range(0, len(payloads), size)]

    async def close(self) -> None:
        await self._processes.close()


def _merge(parts: list[tuple[int, list[Payload]]], results: Sequence[DecodedRows]) -> DecodedRows:
    if len(results) == 1:
        return results[0]
    problems = [
        (offset + index, error)
        for (offset, _), result in zip(parts, results, strict=True)
        for index, error in result.problems
    ]
    return DecodedRows(rows=pa.concat_tables([r.rows for r in results]), problems=problems)
