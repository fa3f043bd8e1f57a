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

import pyarrow as pa
import pyarrow.compute as pc
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
        """`write_rows` for events still in protobuf form."""
        return await self.write_rows(events_to_arrow(events))

    async def write_rows(self, rows: pa.Table) -> SinkResult:
        """Inserts the rows (of `events_to_arrow`) whose event ids are new; the work per
        row is vectorized except one string per id for the lookup."""
        received = rows.num_rows
        if not received:
            return SinkResult(inserted=0, duplicates=0)
        # The dedup index returns ids in canonical (lower-case) form.
        column = rows.schema.get_field_index("event_id")
        ids = pc.utf8_lower(rows.column(column))
        rows = rows.set_column(column, "event_id", ids)
        id_list: list[str] = ids.to_pylist()
        if pc.count_distinct(ids).as_py() != received:
            first = {event_id: index for index, event_id in reversed(list(enumerate(id_list)))}
            rows = rows.take(pa.array(sorted(first.values()), pa.int64()))
            id_list = list(first)
        known = await self._known(id_list)
        if known:
            rows = rows.filter(
                pc.invert(pc.is_in(rows["event_id"], value_set=pa.array(list(known), pa.string())))
            )
        if rows.num_rows:
            await self._warehouse.insert_arrow("events", rows)
            if self._counts is not None:
                self._counts.touched(rows)
        return SinkResult(inserted=rows.num_rows, duplicates=received - rows.num_rows)

    async def finish_minutes(self) -> None:
        """Writes the finished per-minute viewer counts of closed minutes (see
        `viewer_counts.py`)."""
        if self._counts is not None:
            await self._counts.finish()
