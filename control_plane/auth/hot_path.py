"""Auth's hot-path cache and the hook its writes call (see `hot_cache.py`)."""

from __future__ import annotations

from collections.abc import Callable

from control_plane.hot_cache import TtlMap, no_change_hook
from control_plane.principal import Principal


class AuthHotPath:
    def __init__(self, ttl_s: float, changed: Callable[[], None] = no_change_hook) -> None:
        #: Bearer credential (hashed) -> the caller it authenticates.
        self.principals: TtlMap[Principal] = TtlMap(ttl_s)
        #: Called after every write that can change a caller's rights.
        self.changed = changed

    @classmethod
    def uncached(cls) -> AuthHotPath:
        return cls(ttl_s=0)

    def clear(self) -> None:
        self.principals.clear()
