"""What the ingest consumer needs of a writer: fetched bus messages in, their new events
in the warehouse and their undecodable messages on the dead-letter topic out.

Two implementations: `engine_writer.py` (the warehouse's engine decodes and writes the
messages itself) and `python_writer.py` (Python decodes them, on worker processes or the
loop, into Arrow rows the sink inserts). `writers.py` picks one for the settings; the
consumer drives either the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from data_plane.bus.base import BusMessage


@dataclass(frozen=True, slots=True)
class Written:
    inserted: int
    duplicates: int


class FetchedBatch(Protocol):
    """One fetch's messages, with whatever work its writer started on them ahead."""

    @property
    def messages(self) -> Sequence[BusMessage]: ...

    def cancel(self) -> None:
        """Stops the work started ahead (the batch will not be written)."""
        ...

    async def discard(self) -> None:
        """`cancel`, and waits until that work has stopped."""
        ...


class BatchWriter(Protocol):
    async def start(self) -> None:
        """Starts what the writer runs on (worker processes) before the first batch."""
        ...

    def fetched(self, messages: Sequence[BusMessage]) -> FetchedBatch:
        """A fetch, as the reader hands it to the writer: its decoding may start now,
        while earlier batches are written."""
        ...

    async def write(self, batches: Sequence[FetchedBatch]) -> Written:
        """Writes consecutive fetches as one batch. May raise a transient error
        (WarehouseError, BusError, WorkerUnavailableError); called again with the same
        batches it resumes, writing no event twice (the sink deduplicates) and sending
        no dead letter twice."""
        ...

    def worker_pids(self) -> list[int]:
        """The pids of the processes it decodes on (for tests and diagnostics)."""
        ...

    async def close(self) -> None: ...
