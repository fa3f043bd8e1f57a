"""A read-through cache for hot paths: edge decisions, node and API credentials.

Edges ask far more often than anyone changes a stream, a tenant or a node, so decisions
are answered from memory. Every write that can change a decision or a caller's rights (stream
update, key rotation, delete, tenant status, node drain or revoke, cluster delete, token
revoke, member changes) clears the cache in the same process at once; `ttl_s` bounds how
stale another replica of the control plane can be. Liveness ("already live on another
node") comes from heartbeats, which the cache does not follow, so decisions that depend on
another node's liveness are read fresh (see StreamService.authorize_publish).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from control_plane.auth.principal import Principal
from control_plane.streams.repository import PlayRow, PublishRow

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class NodeAuth:
    node_id: str
    draining: bool


class _TtlMap(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
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


class HotPathCache:
    def __init__(
        self,
        ttl_s: float = 1.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.publish: _TtlMap[PublishRow] = _TtlMap(ttl_s, max_entries, clock)
        self.play: _TtlMap[PlayRow] = _TtlMap(ttl_s, max_entries, clock)
        self.nodes: _TtlMap[NodeAuth] = _TtlMap(ttl_s, max_entries, clock)
        #: Bearer credential (hashed) -> the caller it authenticates.
        self.principals: _TtlMap[Principal] = _TtlMap(ttl_s, max_entries, clock)

    def clear(self) -> None:
        self.publish.clear()
        self.play.clear()
        self.nodes.clear()
        self.principals.clear()
