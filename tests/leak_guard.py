"""Fails a test that leaves a subprocess of ours running or asyncio tasks pending.

Processes are compared with what ran before the test, so servers the harness keeps for
the whole session (PostgreSQL, tansu) do not count. Tasks are checked on the loop of an
async test, after its fixtures have been torn down. A test marked `known_task_leak` names
a leak not fixed yet; the marker is the to-do list, not a way out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import psutil
import pytest
import pytest_asyncio

#: A child that is exiting gets this long to be reaped before it counts as left behind.
_EXIT_GRACE_S = 2.0
#: Processes that live as long as the test session by design: the harness's brokers and
#: database servers (started by the first test that needs one) and multiprocessing's
#: resource tracker (started with the first process pool).
_SESSION_PROCESSES = ("tansu", "postgres", "multiprocessing.resource_tracker")


def _children() -> set[int]:
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if not any(name in command for name in _SESSION_PROCESSES):
            pids.add(child.pid)
    return pids


@pytest.fixture(autouse=True)
def no_subprocess_left_running() -> Iterator[None]:
    before = _children()
    yield
    deadline = time.monotonic() + _EXIT_GRACE_S
    left = _children() - before
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {pid for pid in left if psutil.pid_exists(pid)} & _children()
    alive = []
    for pid in left:
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    assert not alive, f"the test left processes running: {alive}"


@pytest_asyncio.fixture(autouse=True)
async def no_task_left_pending(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    if request.node.get_closest_marker("known_task_leak") is not None:
        return
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    if left:
        # Closing peers and transports finish on their own within moments.
        await asyncio.wait(left, timeout=_EXIT_GRACE_S)
        left = [t for t in left if not t.done()]
    assert not left, f"the test left tasks pending: {[repr(t.get_coro()) for t in left]}"
