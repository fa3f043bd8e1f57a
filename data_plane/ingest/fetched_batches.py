"""Fetched batches waiting for the ingest's writer, bounded by the messages they hold.

The reader adds each fetch as it comes back and waits while the batches waiting hold
`budget` messages or more; the writer takes them all at once and writes them as one
batch. The bound is on messages, not on fetches: a fetch holds whatever the bus had
(one message or thousands), and a writer that lets a batch grow for a while must not
stop the reader after a few small fetches. (Stopping the reader instead would not let
the batch grow on Kafka: aiokafka fetches ahead into a buffer of about a megabyte per
partition and fetches no more until that is read.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

M = TypeVar("M")
T = TypeVar("T")


class FetchedBatches(Generic[M, T]):
    """(messages, extra) pairs in fetch order; `extra` is the caller's (a decoding)."""

    def __init__(self, budget: int) -> None:
        if budget < 1:
            raise ValueError("budget must be >= 1")
        self._budget = budget
        self._batches: list[tuple[Sequence[M], T]] = []
        self.messages = 0
        self._changed = asyncio.Condition()

    @property
    def full(self) -> bool:
        return self.messages >= self._budget

    async def put(self, messages: Sequence[M], extra: T) -> None:
        """Adds a fetch once the batches waiting hold fewer than `budget` messages (a fetch
        is never split, so they may then hold more)."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self.full)
            self._batches.append((messages, extra))
            self.messages += len(messages)
            self._changed.notify_all()

    async def wait(self, timeout_s: float, *, until_full: bool = False) -> bool:
        """Waits up to `timeout_s` for a batch (or, `until_full`, for `budget` messages);
        whether there is one (or they are there)."""

        def ready() -> bool:
            return self.full if until_full else bool(self._batches)

        async with self._changed:
            try:
                async with asyncio.timeout(max(timeout_s, 0)):
                    await self._changed.wait_for(ready)
            except TimeoutError:
                pass
            return ready()

    async def take(self) -> list[tuple[Sequence[M], T]]:
        """Every batch waiting, oldest first, and room for the reader."""
        async with self._changed:
            batches, self._batches = self._batches, []
            self.messages = 0
            self._changed.notify_all()
            return batches
