"""Per-minute viewer counts, so a day's series reads 1,440 numbers, not sets.

The viewer rollups keep the set of sessions seen per minute, which stays exact however
many inserts a minute's events arrive in, but a day of a busy stream then means merging
about a million set entries per query. So the ingest writes each minute's count to
`viewer_counts_by_*_minute` (one number per stream or tenant and minute), and the series
reads those numbers only: one small query, where reading the sets of the minutes still
open as well cost a second query part and doubled the series' time (most of a query's
time in the engine is planning it, not reading).

The sink tells this class which minutes its inserts touched (late events, hours after an
outage, touch old minutes); `recount()` then counts those minutes again, the open one
included, for every stream at once. A count written for an open minute is superseded by
the next: the tables keep the largest, and distinct counts only grow as events arrive.
The ingest recounts about once a second, so the series trails the raw events by that
much. At start it recounts the last hour, in case the previous process died before
counting its last inserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from data_plane.warehouse.base import Warehouse

VIEWER_KINDS = pa.array(["viewer_started", "viewer_progress", "viewer_ended"])
#: How far back a new process recounts minutes.
RECOUNT_AT_START_S = 3600

_COUNT_STREAMS = """
INSERT INTO viewer_counts_by_stream_minute (tenant_id, stream_id, minute, viewers)
SELECT tenant_id, stream_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_stream_minute
WHERE minute >= toDateTime({first:Int64}, 'UTC') AND minute <= toDateTime({last:Int64}, 'UTC')
GROUP BY tenant_id, stream_id, minute
"""
_COUNT_TENANTS = """
INSERT INTO viewer_counts_by_tenant_minute (tenant_id, minute, viewers)
SELECT tenant_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_tenant_minute
WHERE minute >= toDateTime({first:Int64}, 'UTC') AND minute <= toDateTime({last:Int64}, 'UTC')
GROUP BY tenant_id, minute
"""


def minute_of(epoch_s: float) -> int:
    return int(epoch_s) // 60 * 60


class ViewerCounts:
    def __init__(self, warehouse: Warehouse, clock: Callable[[], float] = time.time) -> None:
        self._warehouse = warehouse
        #: Earliest and latest minute (epoch seconds) touched and not yet counted.
        self._first: int | None = minute_of(clock() - RECOUNT_AT_START_S)
        self._last: int | None = minute_of(clock())

    def touched(self, rows: pa.Table) -> None:
        """Notes the minutes an inserted block of `events` rows touched (vectorized)."""
        viewer_rows = rows.filter(pc.is_in(rows["kind"], value_set=VIEWER_KINDS))
        if viewer_rows.num_rows == 0:
            return
        bounds = pc.min_max(viewer_rows["occurred_at"]).as_py()
        self.note(bounds["min"].timestamp(), bounds["max"].timestamp())

    def note(self, first_s: float, last_s: float) -> None:
        """Notes that events between these times (epoch seconds) were inserted."""
        first, last = minute_of(first_s), minute_of(last_s)
        self._first = first if self._first is None else min(self._first, first)
        self._last = last if self._last is None else max(self._last, last)

    async def recount(self) -> bool:
        """Writes the counts of the minutes touched since the last call; True if any were."""
        if self._first is None or self._last is None:
            return False
        # Taken before the statements run: inserts noted meanwhile are counted next time.
        window = {"first": self._first, "last": self._last}
        self._first = self._last = None
        try:
            await self._warehouse.execute(_COUNT_STREAMS, window)
            await self._warehouse.execute(_COUNT_TENANTS, window)
        except BaseException:
            self.note(window["first"], window["last"])
            raise
        return True
