"""Finished per-minute viewer counts, so a day's series reads 1,440 numbers, not sets.

The viewer rollups keep the set of sessions seen per minute, which stays exact however
many inserts a minute's events arrive in, but a day of a busy stream then means merging
about a million set entries per query. Once a minute is over, its count is written to
`viewer_counts_by_*_minute` (one number per stream or tenant and minute). Queries take
the larger of the finished count and the sets for the minutes that may still change:
distinct counts only grow as events arrive, so the larger one is always the current one.

The sink tells this class the earliest minute its inserts touched (late events, hours
after an outage, touch old minutes); `finish()` then recounts the closed minutes from
there, for every stream at once. At start it recounts the last hour, in case the previous
process died before finishing its minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from data_plane.warehouse.base import Warehouse

VIEWER_KINDS = pa.array(["viewer_started", "viewer_progress", "viewer_ended"])
#: How far back a new process recounts finished minutes.
RECOUNT_AT_START_S = 3600

_FINISH_STREAMS = """
INSERT INTO viewer_counts_by_stream_minute (tenant_id, stream_id, minute, viewers)
SELECT tenant_id, stream_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_stream_minute
WHERE minute >= toDateTime({start:Int64}, 'UTC') AND minute < toDateTime({end:Int64}, 'UTC')
GROUP BY tenant_id, stream_id, minute
"""
_FINISH_TENANTS = """
INSERT INTO viewer_counts_by_tenant_minute (tenant_id, minute, viewers)
SELECT tenant_id, minute, toUInt32(uniqExactMerge(sessions))
FROM viewers_by_tenant_minute
WHERE minute >= toDateTime({start:Int64}, 'UTC') AND minute < toDateTime({end:Int64}, 'UTC')
GROUP BY tenant_id, minute
"""


def minute_of(epoch_s: float) -> int:
    return int(epoch_s) // 60 * 60


class ViewerCounts:
    def __init__(self, warehouse: Warehouse, clock: Callable[[], float] = time.time) -> None:
        self._warehouse = warehouse
        self._clock = clock
        #: Earliest and latest minute (epoch seconds) touched and not yet finished.
        self._from: int | None = minute_of(clock() - RECOUNT_AT_START_S)
        self._to: int | None = minute_of(clock())

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
        self._from = first if self._from is None else min(self._from, first)
        self._to = last if self._to is None else max(self._to, last)

    async def finish(self) -> bool:
        """Writes the counts of the closed minutes touched since the last call; True if it
        wrote any. Minutes still open stay noted for a later call."""
        if self._from is None or self._to is None:
            return False
        open_minute = minute_of(self._clock())
        if self._from >= open_minute:
            return False
        window = {"start": self._from, "end": open_minute}
        await self._warehouse.execute(_FINISH_STREAMS, window)
        await self._warehouse.execute(_FINISH_TENANTS, window)
        if self._to >= open_minute:
            self._from = open_minute
        else:
            self._from = self._to = None
        return True
