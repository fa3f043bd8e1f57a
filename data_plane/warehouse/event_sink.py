"""Writes events to the warehouse so that each event id is stored once.

A batch is stripped of ids it repeats and of ids the warehouse already holds (one lookup
in the `event_ids` dedup index), and the rest is inserted in one block; the rollups'
materialized views then see every event exactly once (see `schema.py`).

The lookup and the insert are not one transaction: two writers inserting the same new id
at the same moment would both insert it. Kafka gives each partition one consumer, and the
ingress keys events by stream, so that takes two consumers owning one partition at once
(a member that lost the partition in a rebalance and still writes its last batch). The
raw-table queries stay exact even then (ReplacingMergeTree, FINAL, uniqExact); a rollup
could count that batch twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tidecast.events.v1 import events_pb2 as ev

from data_plane.warehouse.base import Warehouse
from data_plane.warehouse.event_rows import events_to_arrow
from data_plane.warehouse.viewer_counts import ViewerCounts

#: Ids per lookup; a larger batch is looked up in slices.
LOOKUP_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class SinkResult:
    inserted: int
    duplicates: int


class EventSink:
    def __init__(self, warehouse: Warehouse, counts: ViewerCounts | None = None) -> None:
        self._warehouse = warehouse
        self._counts = counts

    async def _known(self, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            result = await self._warehouse.query(
                "SELECT toString(event_id) FROM event_ids WHERE event_id IN {ids:Array(UUID)}",
                {"ids": chunk},
            )
            known.update(str(row[0]) for row in result.rows)
        return known

    async def write(self, events: Sequence[ev.Event]) -> SinkResult:
        unique: dict[str, ev.Event] = {}
        for event in events:
            unique.setdefault(event.event_id.lower(), event)
        known = await self._known(list(unique)) if unique else set()
        fresh = [event for event_id, event in unique.items() if event_id not in known]
        if fresh:
            rows = events_to_arrow(fresh)
            await self._warehouse.insert_arrow("events", rows)
            if self._counts is not None:
                self._counts.touched(rows)
        return SinkResult(inserted=len(fresh), duplicates=len(events) - len(fresh))

    async def finish_minutes(self) -> None:
        """Writes the finished per-minute viewer counts of closed minutes (see
        `viewer_counts.py`)."""
        if self._counts is not None:
            await self._counts.finish()
