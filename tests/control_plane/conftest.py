"""The control plane on a real database (SQLite file or the harness's PostgreSQL), with
its REST app over ASGI and its gRPC server on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from control_plane.app import Database, create_app, open_database
from control_plane.auth.principal import Scope
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings
from tests.harness.postgres import create_database


@dataclass
class ControlPlane:
    settings: ControlPlaneSettings
    database: Database
    metrics: ControlPlaneMetrics
    client: httpx.AsyncClient
    admin_token: str
    grpc_target: str
    channel: grpc.aio.Channel

    def as_(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url="http://control",
            headers={"Authorization": f"Bearer {token}"},
        )

    @property
    def stub(self) -> edge_control_pb2_grpc.EdgeControlStub:
        return edge_control_pb2_grpc.EdgeControlStub(self.channel)

    async def tenant(self, name: str = "acme") -> str:
        response = await self.client.post("/v1/tenants", json={"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def token(self, tenant_id: str, *scopes: str) -> str:
        response = await self.client.post(
            f"/v1/tenants/{tenant_id}/tokens", json={"name": "t", "scopes": list(scopes)}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def stream(self, tenant_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/tenants/{tenant_id}/streams", json={"name": "s", **fields}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def enroll(self, name: str | None = None) -> str:
        """Enrolls a node over gRPC; returns its credential."""
        cluster = await self.client.post(
            "/v1/clusters", json={"name": name or f"c{time.time_ns()}", "region": "eu"}
        )
        assert cluster.status_code == 201, cluster.text
        token = await self.client.post(
            f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 60}
        )
        response = await self.stub.EnrollNode(
            pb.EnrollNodeRequest(
                enrollment_token=token.json()["token"], hostname="edge", region="eu"
            )
        )
        return response.node_credential


def node_metadata(credential: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {credential}"),)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'control.db'}"
    server: str = request.getfixturevalue("postgres_url")
    return create_database(server, f"cp{time.time_ns()}")


@pytest.fixture
def settings(database_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(
        database_url=database_url,
        signing_secret=SecretStr("test-" + "k" * 40),
        grpc_port=0,
        max_body_bytes=4096,
        node_stale_after_s=1.5,
        public_rtmp_url="rtmp://edge.test/live",
        public_playback_url="http://edge.test",
    )


@pytest_asyncio.fixture
async def control(settings: ControlPlaneSettings) -> AsyncIterator[ControlPlane]:
    metrics = ControlPlaneMetrics()
    async with open_database(settings, migrate=True) as database:
        async with database.session_factory() as session:
            admin = await AuthService(session, settings).create_api_token(
                None, "platform", list(Scope)
            )
        server, port = create_grpc_server(settings, database, metrics)
        await server.start()
        app = create_app(settings, database, metrics)
        transport = httpx.ASGITransport(app)
        client = httpx.AsyncClient(
            transport=transport,
            base_url="http://control",
            headers={"Authorization": f"Bearer {admin.secret}"},
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield ControlPlane(
                settings, database, metrics, client, admin.secret, f"127.0.0.1:{port}", channel
            )
        finally:
            await channel.close(grace=None)
            await client.aclose()
            await server.stop(grace=None)
