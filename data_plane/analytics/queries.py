"""The analytics queries, in ClickHouse SQL with bound parameters. Every query is scoped to
one tenant by a `tenant_id = {tenant:String}` condition; no SQL is built from request text.

Raw-table queries use idempotent aggregates (uniqExact, min/max, countIf on distinct
sessions), so they count each event once even if a duplicate slipped past the sink;
rollup queries read tables the sink fed each event exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from data_plane.analytics.time_range import TimeRange
from data_plane.warehouse.base import Warehouse

#: The per-minute counts the ingest writes (see warehouse/viewer_counts.py). An open
#: minute may have several rows until the parts merge, and the largest is the latest; the
#: largest is picked in Python, where GROUP BY cost the engine a fifth of the query.
_SERIES_SQL = """
SELECT toUnixTimestamp(minute) AS at, viewers
FROM {table}
WHERE tenant_id = {{tenant:String}} {stream_condition}
  AND minute >= toDateTime({{start:Int64}} / 1000, 'UTC')
  AND minute < toDateTime({{end:Int64}} / 1000, 'UTC')
"""
#: Fixed texts, chosen by whether one stream or the whole tenant is asked for.
_SERIES = {
    True: _SERIES_SQL.format(
        table="viewer_counts_by_stream_minute", stream_condition="AND stream_id = {stream:String}"
    ),
    False: _SERIES_SQL.format(table="viewer_counts_by_tenant_minute", stream_condition=""),
}


def _ms(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value) / 1000, UTC)


@dataclass(frozen=True, slots=True)
class CurrentViewers:
    total: int
    by_stream: dict[str, int]


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: str
    stream_id: str
    viewer_minutes: float
    egress_bytes: int


@dataclass(frozen=True, slots=True)
class HealthPoint:
    at: datetime
    bitrate_bps: float
    fps: float
    keyframe_interval_s: float
    dropped_frames: int
    samples: int


@dataclass(frozen=True, slots=True)
class StreamSession:
    session_id: str
    stream_id: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int
    protocol: str
    video_codec: str
    width: int
    height: int
    audio_codec: str
    bytes_in: int
    end_reason: str


class AnalyticsQueries:
    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    async def current_viewers(
        self, tenant_id: str, *, now_ms: int, idle_ms: int, stream_id: str | None = None
    ) -> CurrentViewers:
        """Sessions with an event within `idle_ms` and no end event."""
        result = await self._warehouse.query(
            """
            SELECT stream_id, count() AS viewers FROM (
                SELECT stream_id, session_id
                FROM events
                WHERE tenant_id = {tenant:String}
                  AND kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
                  AND ({stream:String} = '' OR stream_id = {stream:String})
                  AND occurred_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                GROUP BY stream_id, session_id
                HAVING countIf(kind = 'viewer_ended') = 0
            )
            GROUP BY stream_id
            ORDER BY stream_id
            """,
            {"tenant": tenant_id, "stream": stream_id or "", "since": now_ms - idle_ms},
        )
        by_stream = {str(row[0]): int(row[1]) for row in result.rows}
        return CurrentViewers(total=sum(by_stream.values()), by_stream=by_stream)

    async def viewer_series(
        self, tenant_id: str, window: TimeRange, stream_id: str | None = None
    ) -> list[int]:
        """Concurrent viewers per minute from the window's start (distinct sessions seen in
        the minute), gaps as 0. Trails the raw events by the ingest's recount interval."""
        result = await self._warehouse.query(
            _SERIES[bool(stream_id)],
            {
                "tenant": tenant_id,
                "stream": stream_id or "",
                "start": window.start_ms,
                "end": window.end_ms,
            },
        )
        found: dict[int, int] = {}
        for at_s, viewers in result.rows:
            if viewers > found.get(at_s, 0):
                found[at_s] = viewers
        return [
            found.get(at_s, 0) for at_s in range(window.start_ms // 1000, window.end_ms // 1000, 60)
        ]

    async def unique_viewers(
        self, tenant_id: str, window: TimeRange, stream_id: str | None = None
    ) -> int:
        result = await self._warehouse.query(
            """
            SELECT uniqExact(client_ip_hash)
            FROM events
            WHERE tenant_id = {tenant:String}
              AND kind = 'viewer_started'
              AND ({stream:String} = '' OR stream_id = {stream:String})
              AND occurred_at >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
              AND occurred_at < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
            """,
            {
                "tenant": tenant_id,
                "stream": stream_id or "",
                "start": window.start_ms,
                "end": window.end_ms,
            },
        )
        return int(result.scalar() or 0)

    async def usage_by_day(
        self, tenant_id: str, window: TimeRange, stream_id: str | None = None
    ) -> list[UsageRow]:
        result = await self._warehouse.query(
            """
            SELECT toString(toDate(minute, 'UTC')) AS day, stream_id,
                   sum(watched_ms) / 60000 AS viewer_minutes, sum(bytes) AS egress_bytes
            FROM viewers_by_stream_minute
            WHERE tenant_id = {tenant:String}
              AND ({stream:String} = '' OR stream_id = {stream:String})
              AND minute >= toDateTime({start:Int64} / 1000, 'UTC')
              AND minute < toDateTime({end:Int64} / 1000, 'UTC')
            GROUP BY day, stream_id
            ORDER BY day, stream_id
            LIMIT 10000
            """,
            {
                "tenant": tenant_id,
                "stream": stream_id or "",
                "start": window.start_ms,
                "end": window.end_ms,
            },
        )
        return [
            UsageRow(
                day=str(row[0]),
                stream_id=str(row[1]),
                viewer_minutes=round(float(row[2]), 3),
                egress_bytes=int(row[3]),
            )
            for row in result.rows
        ]

    async def ingest_health(
        self, tenant_id: str, stream_id: str, window: TimeRange
    ) -> list[HealthPoint]:
        result = await self._warehouse.query(
            """
            SELECT toUnixTimestamp(minute) * 1000 AS at,
                   avgMerge(bitrate_bps) AS bitrate, avgMerge(fps) AS fps,
                   avgMerge(keyframe_interval_s) AS keyframe_interval,
                   sum(dropped_frames) AS dropped, sum(samples) AS samples
            FROM ingest_health_by_stream_minute
            WHERE tenant_id = {tenant:String} AND stream_id = {stream:String}
              AND minute >= toDateTime({start:Int64} / 1000, 'UTC')
              AND minute < toDateTime({end:Int64} / 1000, 'UTC')
            GROUP BY minute
            ORDER BY minute
            """,
            {
                "tenant": tenant_id,
                "stream": stream_id,
                "start": window.start_ms,
                "end": window.end_ms,
            },
        )
        return [
            HealthPoint(
                at=_ms(row[0]),
                bitrate_bps=round(float(row[1]), 1),
                fps=round(float(row[2]), 2),
                keyframe_interval_s=round(float(row[3]), 3),
                dropped_frames=int(row[4]),
                samples=int(row[5]),
            )
            for row in result.rows
        ]

    async def stream_sessions(
        self, tenant_id: str, window: TimeRange, *, stream_id: str | None, limit: int
    ) -> list[StreamSession]:
        result = await self._warehouse.query(
            """
            SELECT session_id, any(stream_id) AS stream,
                   toUnixTimestamp64Milli(minIf(occurred_at, kind = 'stream_started')) AS started,
                   toUnixTimestamp64Milli(maxIf(occurred_at, kind = 'stream_ended')) AS ended,
                   maxIf(duration_ms, kind = 'stream_ended') AS duration,
                   anyIf(protocol, kind = 'stream_started') AS protocol,
                   anyIf(video_codec, kind = 'stream_started') AS video_codec,
                   maxIf(width, kind = 'stream_started') AS width,
                   maxIf(height, kind = 'stream_started') AS height,
                   anyIf(audio_codec, kind = 'stream_started') AS audio_codec,
                   maxIf(bytes, kind = 'stream_ended') AS bytes_in,
                   anyIf(end_reason, kind = 'stream_ended') AS end_reason
            FROM events
            WHERE tenant_id = {tenant:String}
              AND kind IN ('stream_started', 'stream_ended')
              AND ({stream:String} = '' OR stream_id = {stream:String})
              AND occurred_at >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
              AND occurred_at < fromUnixTimestamp64Milli({end:Int64}, 'UTC')
            GROUP BY session_id
            ORDER BY started DESC, session_id
            LIMIT {limit:UInt32}
            """,
            {
                "tenant": tenant_id,
                "stream": stream_id or "",
                "start": window.start_ms,
                "end": window.end_ms,
                "limit": limit,
            },
        )
        sessions = []
        for row in result.rows:
            started = int(row[2])
            ended = int(row[3])
            sessions.append(
                StreamSession(
                    session_id=str(row[0]),
                    stream_id=str(row[1]),
                    started_at=_ms(started) if started > 0 else None,
                    ended_at=_ms(ended) if ended > 0 else None,
                    duration_ms=int(row[4]),
                    protocol=str(row[5]),
                    video_codec=str(row[6]),
                    width=int(row[7]),
                    height=int(row[8]),
                    audio_codec=str(row[9]),
                    bytes_in=int(row[10]),
                    end_reason=str(row[11]),
                )
            )
        return sessions

    async def watching_sessions(
        self, tenant_id: str, *, now_ms: int, idle_ms: int, limit: int = 100_000
    ) -> dict[str, list[str]]:
        """Stream id -> sessions with an event within `idle_ms` and no end event."""
        result = await self._warehouse.query(
            """
            SELECT stream_id, session_id
            FROM events
            WHERE tenant_id = {tenant:String}
              AND kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
              AND occurred_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
            GROUP BY stream_id, session_id
            HAVING countIf(kind = 'viewer_ended') = 0
            LIMIT {limit:UInt32}
            """,
            {"tenant": tenant_id, "since": now_ms - idle_ms, "limit": limit},
        )
        sessions: dict[str, list[str]] = {}
        for stream_id, session_id in result.rows:
            sessions.setdefault(str(stream_id), []).append(str(session_id))
        return sessions

    async def live_streams(self, tenant_id: str, *, since_ms: int) -> set[str]:
        """Streams whose latest lifecycle event since `since_ms` is a start."""
        result = await self._warehouse.query(
            """
            SELECT stream_id
            FROM events
            WHERE tenant_id = {tenant:String}
              AND kind IN ('stream_started', 'stream_ended')
              AND occurred_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
            GROUP BY stream_id
            HAVING argMax(kind, (occurred_at, kind = 'stream_ended')) = 'stream_started'
            """,
            {"tenant": tenant_id, "since": since_ms},
        )
        return {str(row[0]) for row in result.rows}
