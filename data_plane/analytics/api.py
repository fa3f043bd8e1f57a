"""Analytics REST API: tenant-scoped reads of the warehouse."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from data_plane.analytics.queries import AnalyticsQueries
from data_plane.analytics.time_range import resolve_range
from data_plane.http.auth import require_reader
from data_plane.settings import DataPlaneSettings

router = APIRouter(prefix="/v1/tenants/{tenant_id}/analytics", tags=["analytics"])

MINUTE = timedelta(minutes=1)
Id = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
OptionalId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Start = Annotated[datetime | None, Query(description="ISO 8601; default: `end` minus one hour")]
End = Annotated[datetime | None, Query(description="ISO 8601; default: now")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CurrentViewersOut(_Out):
    tenant_id: str
    total: int
    streams: dict[str, int]


class ViewerSeriesOut(_Out):
    stream_id: str | None
    start: datetime
    end: datetime
    step_s: int
    #: viewers[i]: concurrent viewers in the minute starting at start + i * step_s.
    viewers: list[int]


class UniqueViewersOut(_Out):
    stream_id: str | None
    start: datetime
    end: datetime
    unique_viewers: int


class UsageDay(_Out):
    day: str
    stream_id: str
    viewer_minutes: float
    egress_bytes: int


class UsageOut(_Out):
    start: datetime
    end: datetime
    days: list[UsageDay]


class HealthPointOut(_Out):
    at: datetime
    bitrate_bps: float
    fps: float
    keyframe_interval_s: float
    dropped_frames: int
    samples: int


class IngestHealthOut(_Out):
    stream_id: str
    start: datetime
    end: datetime
    points: list[HealthPointOut]


class SessionOut(_Out):
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


class SessionsOut(_Out):
    start: datetime
    end: datetime
    sessions: list[SessionOut]


# Dependencies are coroutines: FastAPI runs a plain function on its thread pool, a
# thread hop per request for a lookup.
async def _queries(request: Request) -> AnalyticsQueries:
    queries: AnalyticsQueries = request.app.state.analytics
    return queries


async def _settings(request: Request) -> DataPlaneSettings:
    settings: DataPlaneSettings = request.app.state.settings
    return settings


def _now() -> datetime:
    return datetime.now(UTC)


Queries = Annotated[AnalyticsQueries, Depends(_queries)]
Settings = Annotated[DataPlaneSettings, Depends(_settings)]


async def _reader(request: Request, tenant_id: str) -> str:
    await require_reader(request, tenant_id)
    return tenant_id


Tenant = Annotated[str, Depends(_reader)]


@router.get("/viewers/current", response_model=CurrentViewersOut)
async def current_viewers(
    tenant_id: Tenant, queries: Queries, settings: Settings, stream_id: OptionalId = None
) -> CurrentViewersOut:
    """Viewers watching now, per stream and in all: sessions with recent activity and no end."""
    result = await queries.current_viewers(
        tenant_id,
        now_ms=time.time_ns() // 1_000_000,
        idle_ms=int(settings.viewer_idle_timeout_s * 1000),
        stream_id=stream_id,
    )
    return CurrentViewersOut(tenant_id=tenant_id, total=result.total, streams=result.by_stream)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@router.get("/viewers/timeseries", response_model=ViewerSeriesOut)
async def viewer_timeseries(
    tenant_id: Tenant,
    queries: Queries,
    settings: Settings,
    stream_id: OptionalId = None,
    start: Start = None,
    end: End = None,
) -> JSONResponse:
    """Concurrent viewers in 1-minute buckets for a stream, or the whole tenant:
    `viewers[i]` is the minute starting at `start + i * step_s`."""
    window = resolve_range(
        start,
        end,
        now=_now(),
        default=timedelta(hours=1),
        max_span=MINUTE * settings.api_max_points,
        step=MINUTE,
    )
    viewers = await queries.viewer_series(tenant_id, window, stream_id)
    # Up to api_max_points values, serialized directly (the model above documents the
    # shape): validating them one by one cost more than the query.
    return JSONResponse(
        {
            "stream_id": stream_id,
            "start": _iso(window.start),
            "end": _iso(window.end),
            "step_s": 60,
            "viewers": viewers,
        }
    )


@router.get("/viewers/unique", response_model=UniqueViewersOut)
async def unique_viewers(
    tenant_id: Tenant,
    queries: Queries,
    stream_id: OptionalId = None,
    start: Start = None,
    end: End = None,
) -> UniqueViewersOut:
    """Distinct viewers (by hashed client address) who started watching in the range."""
    window = resolve_range(
        start, end, now=_now(), default=timedelta(days=1), max_span=timedelta(days=92)
    )
    count = await queries.unique_viewers(tenant_id, window, stream_id)
    return UniqueViewersOut(
        stream_id=stream_id, start=window.start, end=window.end, unique_viewers=count
    )


@router.get("/usage", response_model=UsageOut)
async def usage(
    tenant_id: Tenant,
    queries: Queries,
    stream_id: OptionalId = None,
    start: Start = None,
    end: End = None,
) -> UsageOut:
    """Viewer-minutes and egress bytes by stream and by day (UTC)."""
    window = resolve_range(
        start,
        end,
        now=_now(),
        default=timedelta(days=7),
        max_span=timedelta(days=400),
        step=MINUTE,
    )
    rows = await queries.usage_by_day(tenant_id, window, stream_id)
    return UsageOut(
        start=window.start,
        end=window.end,
        days=[
            UsageDay(
                day=r.day,
                stream_id=r.stream_id,
                viewer_minutes=r.viewer_minutes,
                egress_bytes=r.egress_bytes,
            )
            for r in rows
        ],
    )


@router.get("/ingest-health", response_model=IngestHealthOut)
async def ingest_health(
    tenant_id: Tenant,
    queries: Queries,
    settings: Settings,
    stream_id: Id,
    start: Start = None,
    end: End = None,
) -> IngestHealthOut:
    """Ingest bitrate, frame rate, keyframe interval and dropped frames per minute."""
    window = resolve_range(
        start,
        end,
        now=_now(),
        default=timedelta(hours=1),
        max_span=MINUTE * settings.api_max_points,
        step=MINUTE,
    )
    points = await queries.ingest_health(tenant_id, stream_id, window)
    return IngestHealthOut(
        stream_id=stream_id,
        start=window.start,
        end=window.end,
        points=[
            HealthPointOut(
                at=p.at,
                bitrate_bps=p.bitrate_bps,
                fps=p.fps,
                keyframe_interval_s=p.keyframe_interval_s,
                dropped_frames=p.dropped_frames,
                samples=p.samples,
            )
            for p in points
        ],
    )


@router.get("/sessions", response_model=SessionsOut)
async def stream_sessions(
    tenant_id: Tenant,
    queries: Queries,
    stream_id: OptionalId = None,
    start: Start = None,
    end: End = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SessionsOut:
    """Publish sessions (start, end, duration, protocol, codecs), newest first."""
    window = resolve_range(
        start, end, now=_now(), default=timedelta(days=7), max_span=timedelta(days=92)
    )
    sessions = await queries.stream_sessions(tenant_id, window, stream_id=stream_id, limit=limit)
    return SessionsOut(
        start=window.start,
        end=window.end,
        sessions=[
            SessionOut(
                session_id=s.session_id,
                stream_id=s.stream_id,
                started_at=s.started_at,
                ended_at=s.ended_at,
                duration_ms=s.duration_ms,
                protocol=s.protocol,
                video_codec=s.video_codec,
                width=s.width,
                height=s.height,
                audio_codec=s.audio_codec,
                bytes_in=s.bytes_in,
                end_reason=s.end_reason,
            )
            for s in sessions
        ],
    )
