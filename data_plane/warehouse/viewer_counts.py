"""Per-minute viewer counts, so a day's series reads 1,440 numbers, not sets.

The viewer rollups keep the set of sessions seen per minute, which stays exact however
many inserts a minute's events arrive in, but a day of a busy stream then means merging
about a million set entries per query. So the ingest writes each minute's count to
`viewer_counts_by_*_minute` (one number per stream or tenant and minute), and the series
reads those numbers only: one small query, where reading the sets of the minutes still
open as well cost a second query part and doubled the series' time (most of a query's
time in the engine is planning it, not reading).

The sink tells this class which minutes and streams its inserts touched (late events,
hours after an outage, touch old minutes); `recount()` then counts those minutes of those
streams again, the open minute included, in one statement per table. A count written for
an open minute is superseded by the next: the tables keep the largest, and distinct counts
only grow as events arrive. The ingest recounts about once a second, so the series trails
the raw events by that much. At start it recounts the last hour of every stream, in case
the previous process died before counting its last inserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from data_plane.warehouse.base import Warehouse

VIEWER_KINDS = pa.array(["viewer_started", "viewer_progress", "viewer_ended"])
#: How far back a new process recounts minutes.
RECOUNT_AT_START_S = 3600

_MINUTES = (
    "minute >= toDateTime({first:Int64}, 'UTC') AND minute <= toDateTime({last:Int64}, 'UTC')"
)
#: The streams (and tenants) whose events were written: the rollups are ordered by tenant
#: and stream first, so this is what keeps a recount from reading the whole partition.
_OF_STREAMS = """
  AND (tenant_id, stream_id) IN (
      SELECT tenant, stream FROM system.one
      ARRAY JOIN {tenants:Array(String)} AS tenant, {streams:Array(String)} AS stream)"""
_OF_TENANTS = "\n  AND tenant_id IN {tenants:Array(String)}"
_COUNT_STREAMS = """
INSERT INTO viewer_counts_by_stream_minute (tenant_id, stream_id, minute, viewers)
SELECT tenant_id, stream_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_stream_minute
WHERE {minutes}{streams}
GROUP BY tenant_id, stream_id, minute
"""
_COUNT_TENANTS = """
INSERT INTO viewer_counts_by_tenant_minute (tenant_id, minute, viewers)
SELECT tenant_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_tenant_minute
WHERE {minutes}{tenants}
GROUP BY tenant_id, minute
"""
#: (streams, tenants) statements, for every stream and for the streams given.
_STATEMENTS = {
    every: (
        _COUNT_STREAMS.format(minutes=_MINUTES, streams="" if every else _OF_STREAMS),
        _COUNT_TENANTS.format(minutes=_MINUTES, tenants="" if every else _OF_TENANTS),
    )
    for every in (True, False)
}


def minute_of(epoch_s: float) -> int:
    return int(epoch_s) // 60 * 60


class ViewerCounts:
    def __init__(self, warehouse: Warehouse, clock: Callable[[], float] = time.time) -> None:
        self._warehouse = warehouse
        #: Earliest and latest minute (epoch seconds) touched and not yet counted ...
        self._first: int | None = minute_of(clock() - RECOUNT_AT_START_S)
        self._last: int | None = minute_of(clock())
        #: ... and the (tenant, stream) pairs touched; None: every stream.
        self._streams: set[tuple[str, str]] | None = None

    def touched(self, rows: pa.Table) -> None:
        """Notes the minutes and streams an inserted block of `events` rows touched
        (vectorized)."""
        viewer_rows = rows.filter(pc.is_in(rows["kind"], value_set=VIEWER_KINDS))
        if viewer_rows.num_rows == 0:
            return
        bounds = pc.min_max(viewer_rows["occurred_at"]).as_py()
        pairs = viewer_rows.group_by(["tenant_id", "stream_id"]).aggregate([])
        self.note(
            bounds["min"].timestamp(),
            bounds["max"].timestamp(),
            zip(pairs["tenant_id"].to_pylist(), pairs["stream_id"].to_pylist(), strict=True),
        )

    def note(
        self, first_s: float, last_s: float, streams: Iterable[tuple[str, str]] | None
    ) -> None:
        """Notes that viewer events between these times (epoch seconds) of these streams
        (None: of any) were inserted."""
        first, last = minute_of(first_s), minute_of(last_s)
        self._first = first if self._first is None else min(self._first, first)
        self._last = last if self._last is None else max(self._last, last)
        if streams is None:
            self._streams = None
        elif self._streams is not None:
            self._streams.update(streams)

    async def recount(self) -> bool:
        """Writes the counts of the minutes touched since the last call; True if any were."""
        if self._first is None or self._last is None:
            return False
        # Taken before the statements run: inserts noted meanwhile are counted next time.
        first, last, streams = self._first, self._last, self._streams
        self._first = self._last = None
        self._streams = set()
        window: dict[str, object] = {"first": first, "last": last}
        if streams is None:
            of_streams = of_tenants = window
        else:
            of_streams = {
                **window,
                "tenants": [tenant for tenant, _ in streams],
                "streams": [stream for _, stream in streams],
            }
            of_tenants = {**window, "tenants": sorted({tenant for tenant, _ in streams})}
        for_streams, for_tenants = _STATEMENTS[streams is None]
        try:
            await self._warehouse.execute(for_streams, of_streams)
            await self._warehouse.execute(for_tenants, of_tenants)
        except BaseException:
            self.note(first, last, streams)
            raise
        return True
