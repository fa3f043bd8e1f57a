"""A bounded memory of event ids the ingress has already put on the bus.

It lets the ingress tell a sidecar "duplicate" for a retried batch instead of producing the
same events again. It is an optimisation and a courtesy, not the guarantee: ids are
forgotten oldest first, other ingress replicas have their own memory, and the warehouse
sink deduplicates whatever gets through.
"""

from __future__ import annotations

from collections.abc import Iterable


class RecentIds:
    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        # dicts keep insertion order, which makes "forget the oldest" O(1).
        self._ids: dict[str, None] = {}

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def remember(self, event_ids: Iterable[str]) -> None:
        ids = self._ids
        for event_id in event_ids:
            ids[event_id] = None
        overflow = len(ids) - self._capacity
        if overflow > 0:
            for stale in list(ids)[:overflow]:
                del ids[stale]
