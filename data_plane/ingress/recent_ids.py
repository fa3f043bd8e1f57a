"""A bounded memory of event ids the ingress has already put on the bus.

It lets the ingress tell a sidecar "duplicate" for a retried batch instead of producing the
same events again. It is an optimisation and a courtesy, not the guarantee: ids are
forgotten oldest first, other ingress replicas have their own memory, and the warehouse
sink deduplicates whatever gets through.

Two generations of sets: lookups and inserts are set operations done in C for a whole
batch, and when the young generation is full the old one is dropped at once, so memory
stays between `capacity` and twice that.
"""

from __future__ import annotations

from collections.abc import Iterable


class RecentIds:
    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._young: set[str] = set()
        self._old: set[str] = set()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._young or event_id in self._old

    def __len__(self) -> int:
        return len(self._young | self._old)

    def known(self, event_ids: Iterable[str]) -> set[str]:
        """The ids among `event_ids` remembered here."""
        ids = set(event_ids)
        return (ids & self._young) | (ids & self._old)

    def remember(self, event_ids: Iterable[str]) -> None:
        self._young.update(event_ids)
        if len(self._young) >= self._capacity:
            self._old, self._young = self._young, set()
