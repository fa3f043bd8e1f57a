"""The map behind the hot-path caches: edge decisions, node and API credentials.

Edges ask far more often than anyone changes a stream, a tenant or a node, so decisions
are answered from memory. Each domain owns its cache (`auth/hot_path.py`,
`streams/hot_path.py`, `edges/hot_path.py`); every write that can change a decision or a
caller's rights (stream update, key rotation, delete, tenant status, node drain or revoke,
cluster delete, token revoke, member changes) calls its domain's change hook, which the
composition root (`hot_paths.py`) wires to clear the caches in the same process at once.
`ttl_s` bounds how stale another replica of the control plane can be. Liveness ("already
live on another node") comes from heartbeats, which no cache follows, so decisions that
depend on another node's liveness are read fresh (see `streams/edge_decisions.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")

#: A map this full starts over, so a flood of unknown keys cannot grow memory unbounded.
MAX_ENTRIES = 200_000


class TtlMap(Generic[V]):
    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._data: dict[str, tuple[float, V | None]] = {}

    def get(self, key: str) -> tuple[bool, V | None]:
        """(hit, value); a hit may carry None: "known not to exist"."""
        entry = self._data.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._data[key]
            return False, None
        return True, entry[1]

    def put(self, key: str, value: V | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._data) >= self._max:
            self._data.clear()
        self._data[key] = (self._clock() + self._ttl, value)

    def clear(self) -> None:
        self._data.clear()


def no_change_hook() -> None:
    """The hook of a service built without caches to keep consistent."""
