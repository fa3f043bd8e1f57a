"""The control plane's REST application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from control_plane.auth.api import router as auth_router
from control_plane.auth.bearer import BearerAuthenticator
from control_plane.auth.login_throttle import LoginThrottle, ThrottlePolicy
from control_plane.db.direct_reader import DirectReader, open_direct_reader
from control_plane.db.engine import create_engine, create_session_factory
from control_plane.db.migrate import upgrade_to_head
from control_plane.edges.api import router as edges_router
from control_plane.hot_paths import HotPaths, wire_hot_paths
from control_plane.http.errors import error_response, install_error_handlers
from control_plane.http.middleware import BodySizeLimitMiddleware, MetricsMiddleware
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.api import router as streams_router
from control_plane.streams.listing import StreamListing
from control_plane.tenants.api import router as tenants_router


@dataclass
class Database:
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    #: Connections of its own for the busiest reads (see db/direct_reader.py).
    reader: DirectReader
    #: Shared by the REST app (whose writes clear them) and the gRPC server (which
    #: answers edges from them) in one process.
    hot_paths: HotPaths


@asynccontextmanager
async def open_database(
    settings: ControlPlaneSettings, *, migrate: bool
) -> AsyncIterator[Database]:
    """Opens the configured database, optionally bringing its schema to head first."""
    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await upgrade_to_head(engine)
        reader = await open_direct_reader(engine, max_connections=settings.direct_read_connections)
        try:
            yield Database(
                engine=engine,
                session_factory=create_session_factory(engine),
                reader=reader,
                hot_paths=wire_hot_paths(settings.hot_cache_ttl_s),
            )
        finally:
            await reader.close()
    finally:
        await engine.dispose()


def create_app(
    settings: ControlPlaneSettings,
    database: Database,
    metrics: ControlPlaneMetrics | None = None,
) -> FastAPI:
    """The database is opened and closed by the caller, which may share it with the gRPC
    server in the same process."""
    metrics = metrics or ControlPlaneMetrics()
    app = FastAPI(
        title="Tidecast control plane",
        version="1.0.0",
        description="Tenants, users and tokens, streams and stream keys, and the edge "
        "registry. Every tenant resource lives under /v1/tenants/{tenant_id}; a credential "
        "that cannot see a tenant gets 404 for all of it.",
    )
    app.state.settings = settings
    app.state.session_factory = database.session_factory
    # Each domain's routes find their own hot path here (`http.deps.app_state`).
    hot_paths = database.hot_paths
    app.state.auth_hot_path = hot_paths.auth
    app.state.streams_hot_path = hot_paths.streams
    app.state.edges_hot_path = hot_paths.edges
    app.state.tenants_changed = hot_paths.tenants_changed
    app.state.authenticator = BearerAuthenticator(
        database.session_factory, settings, hot_paths.auth
    )
    app.state.stream_listing = StreamListing(database.reader, database.engine.dialect)
    app.state.metrics = metrics
    app.state.login_throttle = LoginThrottle(ThrottlePolicy.from_settings(settings))
    install_error_handlers(app)
    # Routes are matched in order, at a few microseconds each: the busiest (the stream
    # list) first. No two routers' paths overlap, so the order changes nothing else.
    app.include_router(streams_router)
    app.include_router(auth_router)
    app.include_router(tenants_router)
    app.include_router(edges_router)

    @app.get("/healthz", tags=["operations"], operation_id="healthz")
    async def healthz(request: Request) -> Response:
        try:
            async with request.app.state.session_factory() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:  # any database failure means not healthy
            return error_response(503, "unavailable", f"database: {type(exc).__name__}")
        return Response('{"status":"ok"}', media_type="application/json")

    @app.get("/metrics", tags=["operations"], operation_id="metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
