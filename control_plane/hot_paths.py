"""The domains' hot-path caches, wired to each other's change hooks (composition root).

One write's consequences cross domains: a tenant's status is part of the streams'
decisions, memberships and tokens are part of auth's callers, a deleted cluster takes its
nodes' credentials along. Writes are rare next to the reads the caches answer, so any
write that calls its domain's hook clears every cache in the process at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from control_plane.auth.hot_path import AuthHotPath
from control_plane.edges.hot_path import EdgesHotPath
from control_plane.streams.hot_path import StreamsHotPath


@dataclass(frozen=True)
class HotPaths:
    auth: AuthHotPath
    streams: StreamsHotPath
    edges: EdgesHotPath
    #: What tenant writes call; tenants cache nothing of their own.
    tenants_changed: Callable[[], None]

    def clear(self) -> None:
        self.auth.clear()
        self.streams.clear()
        self.edges.clear()


def wire_hot_paths(ttl_s: float) -> HotPaths:
    """Hot paths whose change hooks all clear every cache; `ttl_s` bounds staleness on
    other replicas."""
    clear_all: list[Callable[[], None]] = []

    def changed() -> None:
        for clear in clear_all:
            clear()

    paths = HotPaths(
        auth=AuthHotPath(ttl_s, changed),
        streams=StreamsHotPath(ttl_s, changed),
        edges=EdgesHotPath(ttl_s, changed),
        tenants_changed=changed,
    )
    clear_all.append(paths.clear)
    return paths
