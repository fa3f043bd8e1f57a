"""A whole single-node platform for end-to-end tests: control plane (REST in process, gRPC
on loopback) and one edge sidecar hosting the media engine on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest_asyncio
from pydantic import SecretStr

from control_plane.app import create_app, open_database
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.principal import Scope
from control_plane.settings import ControlPlaneSettings
from edge_sidecar.settings import EdgeSidecarSettings
from edge_sidecar.supervisor import EdgeSidecar


@dataclass
class Platform:
    api: httpx.AsyncClient
    edge: EdgeSidecar
    state_dir: Path
    control_grpc: grpc.aio.Server

    @property
    def rtmp_base(self) -> str:
        return self.edge.rtmp_url

    @property
    def hls_base(self) -> str:
        return self.edge.http_url

    async def create_tenant(self, name: str) -> str:
        response = await self.api.post("/v1/tenants", json={"name": name})
        response.raise_for_status()
        return str(response.json()["id"])

    async def create_stream(self, tenant_id: str, name: str, **fields: Any) -> dict[str, Any]:
        response = await self.api.post(
            f"/v1/tenants/{tenant_id}/streams", json={"name": name, **fields}
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def rtmp_url(self, key: str) -> str:
        return f"{self.rtmp_base}/{key}"

    def hls_url(self, playback_id: str) -> str:
        return f"{self.hls_base}/hls/{playback_id}/index.m3u8"


@pytest_asyncio.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = ControlPlaneSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        signing_secret=SecretStr("e2e-" + "s" * 40),
        grpc_port=0,
        node_stale_after_s=30,
    )
    metrics = ControlPlaneMetrics()
    async with open_database(settings, migrate=True) as database:
        async with database.session_factory() as session:
            token = (
                await AuthService(session, settings).create_api_token(None, "e2e", list(Scope))
            ).secret
        grpc_server, grpc_port = create_grpc_server(settings, database, metrics)
        await grpc_server.start()
        app = create_app(settings, database, metrics)
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://control",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            cluster = await api.post("/v1/clusters", json={"name": "e2e", "region": "local"})
            cluster.raise_for_status()
            enroll = await api.post(
                f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 300}
            )
            enroll.raise_for_status()
            edge = EdgeSidecar(
                EdgeSidecarSettings(
                    control_target=f"127.0.0.1:{grpc_port}",
                    enroll_token=SecretStr(enroll.json()["token"]),
                    state_dir=tmp_path / "edge",
                    rtmp_port=0,
                    http_port=0,
                    admin_port=0,
                    webrtc_port=0,
                    segment_duration_s=2.0,
                    health_interval_s=1.0,
                    heartbeat_interval_s=1.0,
                )
            )
            await edge.start()
            try:
                yield Platform(
                    api=api, edge=edge, state_dir=tmp_path / "edge", control_grpc=grpc_server
                )
            finally:
                await edge.stop()
        finally:
            await api.aclose()
            await grpc_server.stop(grace=1.0)
