"""Assembles the data plane's HTTP app: the analytics API, the realtime WebSocket, health
and metrics."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from data_plane.analytics.api import router as analytics_router
from data_plane.analytics.queries import AnalyticsQueries
from data_plane.directory.client import DirectoryClient
from data_plane.http.errors import install_error_handlers
from data_plane.realtime.api import router as realtime_router
from data_plane.realtime.hub import RealtimeHub
from data_plane.settings import DataPlaneSettings


def create_api_app(
    settings: DataPlaneSettings,
    *,
    directory: DirectoryClient,
    analytics: AnalyticsQueries,
    hub: RealtimeHub,
    registry: CollectorRegistry,
) -> FastAPI:
    app = FastAPI(
        title="Tidecast data plane",
        version="1",
        description="Tenant analytics (viewers, usage, ingest health, sessions) and the "
        "realtime WebSocket. Authenticate with a tenant user's access token or an API token.",
    )
    app.state.settings = settings
    app.state.directory = directory
    app.state.analytics = analytics
    app.state.hub = hub
    install_error_handlers(app)
    app.include_router(analytics_router)
    app.include_router(realtime_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "realtime_subscribers": hub.subscribers}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
