"""Sends that arrive while one is on its way leave together, as the next group.

A Kafka broker stores each produce call's messages as one record batch per partition, so
the ingress's many small concurrent calls (one per PublishEvents request) became many
small batches. Every batch costs the broker and its consumers something per fetch; on
tansu the cost of a fetch even grows with the batches held (docs/benchmarks-history.md,
2026-12-05). Grouping is the classic group
commit: a lone send goes at once, so an idle bus adds no latency, and under load a send
waits at most for the group ahead of it, which the client library would have made it
wait for anyway (aiokafka keeps one produce request in flight per broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupedSends(Generic[T]):
    """Hands ``deliver`` the items of every send that waited while the previous group was
    being delivered, in arrival order; each send returns (or raises) with its group."""

    def __init__(
        self,
        deliver: Callable[[list[T]], Awaitable[None]],
        closed: Callable[[], Exception] = lambda: RuntimeError("the sends were closed"),
        *,
        linger_s: float = 0.0,
    ) -> None:
        """A group leaves no sooner than ``linger_s`` after the previous one left (Kafka's
        ``linger.ms``, but only under load: a send after a quiet spell leaves at once).
        ``closed()`` makes the error the sends still waiting get from ``close()``."""
        if linger_s < 0:
            raise ValueError("linger_s must be >= 0")
        self._deliver = deliver
        self._closed = closed
        self._linger_s = linger_s
        self._last_left = -math.inf
        self._waiting: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        #: Groups handed to ``deliver`` so far, for tests and diagnostics.
        self.groups = 0

    async def send(self, items: Sequence[T]) -> None:
        """Returns once ``deliver`` took a group holding ``items``; raises what it raised.

        A caller that is cancelled (a timeout) may still see its items delivered with
        their group: delivery is at least once."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, done))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="grouped-sends")
        await done

    async def _run(self) -> None:
        try:
            loop = asyncio.get_running_loop()
            while self._waiting:
                wait_s = self._last_left + self._linger_s - loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                self._last_left = loop.time()
                group, self._waiting = self._waiting, []
                items = [item for sent, _ in group for item in sent]
                self.groups += 1
                try:
                    await self._deliver(items)
                except Exception as exc:
                    self._settle(group, exc)
                except asyncio.CancelledError:
                    self._settle(group, self._closed())
                    raise
                else:
                    self._settle(group, None)
        finally:
            self._task = None
            # Closed mid-group: whoever still waits must not wait forever.
            waiting, self._waiting = self._waiting, []
            self._settle(waiting, self._closed())

    def _settle(
        self, group: list[tuple[Sequence[T], asyncio.Future[None]]], error: Exception | None
    ) -> None:
        for _, done in group:
            if done.done():
                continue  # its caller was cancelled
            if error is None:
                done.set_result(None)
            else:
                # One exception object raised in several tasks would collect their
                # tracebacks; each caller gets its own copy of the error.
                done.set_exception(_copy(error))

    async def close(self) -> None:
        """Stops the group on its way, if any; its sends and the waiting ones raise
        ``closed()``."""
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _copy(error: Exception) -> Exception:
    try:
        twin = type(error)(*error.args)
    except Exception:
        return error
    twin.__cause__ = error
    return twin
