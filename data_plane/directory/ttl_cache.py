"""A bounded map whose entries expire: the directory client's memory of answers."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[K, tuple[float, V | None]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def get(self, key: K) -> tuple[bool, V | None]:
        """(hit, value): a hit may hold None, a remembered "does not exist"."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: K, value: V | None, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
