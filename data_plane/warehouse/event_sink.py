"""Writes events to the warehouse so that each event id is stored once.

A batch is stripped of ids it repeats and of ids the warehouse already holds (one lookup
in the `event_ids_by_hour` dedup index), and the rest is inserted in one block; the rollups'
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
from data_plane.warehouse.engine_decoding import EngineWrite, EngineWriting
from data_plane.warehouse.event_rows import events_to_arrow
from data_plane.warehouse.viewer_counts import ViewerCounts

#: Ids per lookup; a larger batch is looked up in slices.
LOOKUP_CHUNK = 20_000
_LOOKUP = """
SELECT toString(event_id) FROM event_ids_by_hour
WHERE toStartOfHour(occurred_at) BETWEEN toStartOfHour(toDateTime({first:Int64}, 'UTC'))
                                     AND toStartOfHour(toDateTime({last:Int64}, 'UTC'))
  AND event_id IN {ids:Array(UUID)}
"""


@dataclass(frozen=True, slots=True)
class SinkResult:
    inserted: int
    duplicates: int


class EventSink:
    def __init__(self, warehouse: Warehouse, counts: ViewerCounts | None = None) -> None:
        self._warehouse = warehouse
        self._counts = counts

    async def _known(self, ids: list[str], occurred_at: pa.ChunkedArray) -> set[str]:
        """The ids among `ids` (with their events' times) the dedup index holds. The index
        is ordered by hour first, so a lookup reads only the hours the batch spans: copies
        of an event carry its `occurred_at`."""
        known: set[str] = set()
        seconds = pc.divide(pc.cast(occurred_at, pa.int64()), 1000)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            span = pc.min_max(seconds.slice(start, len(chunk)))
            result = await self._warehouse.query(
                _LOOKUP,
                {"ids": chunk, "first": span["min"].as_py(), "last": span["max"].as_py()},
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
            id_list = rows["event_id"].to_pylist()
        known = await self._known(id_list, rows["occurred_at"])
        if known:
            rows = rows.filter(
                pc.invert(pc.is_in(rows["event_id"], value_set=pa.array(list(known), pa.string())))
            )
        if rows.num_rows:
            await self._warehouse.insert_arrow("events", rows)
            if self._counts is not None:
                self._counts.touched(rows)
        return SinkResult(inserted=rows.num_rows, duplicates=received - rows.num_rows)

    @property
    def writes_messages(self) -> bool:
        """Whether `write_messages` can be used: the warehouse's engine decodes."""
        return isinstance(self._warehouse, EngineWriting)

    async def write_messages(
        self,
        payloads: Sequence[tuple[bytes, str]],
        kinds: Sequence[frozenset[str] | None] | None = None,
    ) -> EngineWrite:
        """Bus messages (value, tenant header) with the event kinds their headers name
        (None: unknown) written by the warehouse's engine, which decodes them and
        deduplicates like `write_rows` (see `engine_decoding.py`). Raises
        BatchRefusedError, having written nothing, when the engine cannot read them."""
        warehouse = self._warehouse
        if not isinstance(warehouse, EngineWriting):
            raise TypeError("this warehouse's engine does not decode messages")
        written = await warehouse.write_event_batches(payloads, kinds)
        if written.viewer_span is not None and self._counts is not None:
            first_ms, last_ms = written.viewer_span
            self._counts.note(first_ms / 1000, last_ms / 1000, written.viewer_streams)
        return written

    async def count_viewers(self) -> None:
        """Writes the per-minute viewer counts of the minutes written since the last call
        (see `viewer_counts.py`)."""
        if self._counts is not None:
            await self._counts.recount()
