"""CPU-bound pure functions on spawned worker processes, beside the event loop.

The data plane's per-event Python work (the ingress's checks, the ingest's decoding when
the warehouse cannot decode) would otherwise hold the loop's GIL, which also slows every
engine thread of the process that needs it back. Workers are spawned, not forked: the
parent holds gRPC and warehouse threads that a fork would copy mid-flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from data_plane.errors import DataPlaneError

P = ParamSpec("P")
T = TypeVar("T")


class WorkerUnavailableError(DataPlaneError):
    """A worker died; the pool is replaced and the work can be submitted again."""


def _warm() -> bool:
    return True


#: How often a worker checks that the process that started it is still there.
PARENT_CHECK_S = 1.0


def _exit_with(parent: int) -> None:
    """Ends this worker when its parent is gone (killed with -9, say): a pool's worker
    holds both ends of its call queue's pipe, so it would otherwise wait forever."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class WorkerProcesses:
    """`workers` processes; with none, the work runs on the calling loop itself (one
    process, one core), through the same calls."""

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with,
                initargs=(os.getpid(),),
            )
        return self._executor

    def pids(self) -> list[int]:
        """The pids of the running workers (for tests and diagnostics)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [pid for pid, process in processes.items() if process.is_alive()]

    async def start(self) -> None:
        """Starts the workers now rather than at the first call (a spawn and its imports
        take about a second)."""
        if self.workers:
            loop = asyncio.get_running_loop()
            pool = self._pool()
            await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(self.workers)))

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args)` on a worker (with none, here); its arguments and result must
        pickle."""
        if kwargs:
            raise TypeError("pass arguments by position")
        if not self.workers:
            return function(*args, **kwargs)
        pool = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool as exc:
            self._discard()
            raise WorkerUnavailableError(f"a worker process died: {exc}") from exc

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
