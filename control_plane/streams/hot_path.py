"""The streams' hot-path cache and the hook their writes call (see `hot_cache.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from control_plane.hot_cache import TtlMap, no_change_hook
from control_plane.streams.repository import PlayStream, PublishStream


@dataclass(frozen=True, slots=True)
class PublishRow:
    """What a publish decision needs that only writes change, so it can be cached.

    The holder's liveness is not here: it follows heartbeats, so it is read fresh when
    another node holds the stream (see `streams/edge_decisions.py`).
    """

    stream: PublishStream
    tenant_active: bool


@dataclass(frozen=True, slots=True)
class PlayRow:
    stream: PlayStream
    tenant_active: bool


class StreamsHotPath:
    def __init__(self, ttl_s: float, changed: Callable[[], None] = no_change_hook) -> None:
        #: Stream key hash -> publish facts; None: no stream has this key.
        self.publish: TtlMap[PublishRow] = TtlMap(ttl_s)
        #: Playback id -> play facts; None: no stream has this playback id.
        self.play: TtlMap[PlayRow] = TtlMap(ttl_s)
        #: Called after every write that can change a decision.
        self.changed = changed

    @classmethod
    def uncached(cls) -> StreamsHotPath:
        return cls(ttl_s=0)

    def clear(self) -> None:
        self.publish.clear()
        self.play.clear()
