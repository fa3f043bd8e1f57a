"""The edge registry's hot-path cache and the hook its writes call (see `hot_cache.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from control_plane.hot_cache import TtlMap, no_change_hook


@dataclass(frozen=True, slots=True)
class NodeAuth:
    node_id: str
    draining: bool


class EdgesHotPath:
    def __init__(self, ttl_s: float, changed: Callable[[], None] = no_change_hook) -> None:
        #: Node credential (hashed) -> the node it authenticates; None: unknown or revoked.
        self.nodes: TtlMap[NodeAuth] = TtlMap(ttl_s)
        #: Called after every write that can change a node's rights.
        self.changed = changed

    @classmethod
    def uncached(cls) -> EdgesHotPath:
        return cls(ttl_s=0)

    def clear(self) -> None:
        self.nodes.clear()
