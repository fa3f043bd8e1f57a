"""A control plane under test: on a real database, its REST app over ASGI and its gRPC
server on loopback, with helpers that drive it. The fixtures are in conftest.py; other
planes' tests import this module to run a control plane beside theirs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from control_plane.app import Database, create_app, open_database
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.principal import Scope
from control_plane.settings import ControlPlaneSettings

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

#: One password for every user the tests create: Argon2 makes each new user cost ~50 ms,
#: so tests create few users and reuse them by email where they can.
PASSWORD = "correct-horse-battery"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_settings(database_url: str, **overrides: Any) -> ControlPlaneSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "signing_secret": SecretStr("test-signing-" + "k" * 40),
        "environment": "test",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "max_body_bytes": 4096,
        "node_stale_after_s": 1.5,
        "public_rtmp_url": "rtmp://edge.test/live",
        "public_playback_url": "http://edge.test",
        "public_webrtc_url": "http://edge.test:8089",
    }
    values.update(overrides)
    return ControlPlaneSettings(**values)


@dataclass
class ControlPlane:
    settings: ControlPlaneSettings
    database: Database
    metrics: ControlPlaneMetrics
    app: FastAPI
    #: Acts as a platform operator (a platform API token).
    client: httpx.AsyncClient
    admin_token: str
    channel: grpc.aio.Channel
    grpc_target: str = ""
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def as_(self, token: str | None) -> httpx.AsyncClient:
        """A client authenticating with `token` (None: no Authorization header)."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        client = httpx.AsyncClient(
            transport=self.client._transport, base_url="http://test", headers=headers
        )
        self._clients.append(client)
        return client

    @property
    def stub(self) -> edge_control_pb2_grpc.EdgeControlAsyncStub:
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

    async def member(self, tenant_id: str, email: str, role: str) -> dict[str, Any]:
        """Adds `email` to the tenant, creating the user (with PASSWORD) if needed."""
        body: dict[str, Any] = {"email": email, "role": role}
        response = await self.client.post(f"/v1/tenants/{tenant_id}/members", json=body)
        if response.status_code == 404:  # no such user yet
            body["password"] = PASSWORD
            response = await self.client.post(f"/v1/tenants/{tenant_id}/members", json=body)
        assert response.status_code == 201, response.text
        member: dict[str, Any] = response.json()
        return member

    async def login(self, email: str) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        pair: dict[str, Any] = response.json()
        return pair

    async def cluster(self) -> str:
        response = await self.client.post(
            "/v1/clusters", json={"name": unique("cluster"), "region": "eu"}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def enrollment_token(self, cluster_id: str, ttl_seconds: int = 60) -> str:
        response = await self.client.post(
            f"/v1/clusters/{cluster_id}/enrollment-tokens", json={"ttl_seconds": ttl_seconds}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def enroll(self, cluster_id: str | None = None) -> Node:
        """Enrolls a node over gRPC (in a new cluster unless one is given)."""
        cluster_id = cluster_id or await self.cluster()
        response = await self.stub.EnrollNode(
            pb.EnrollNodeRequest(
                enrollment_token=await self.enrollment_token(cluster_id),
                hostname="edge-1",
                region="eu",
            )
        )
        return Node(response.node_id, response.cluster_id, response.node_credential)


@dataclass(frozen=True)
class Node:
    id: str
    cluster_id: str
    credential: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return node_metadata(self.credential)


def node_metadata(credential: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {credential}"),)


def fill(path: str, ids: dict[str, str]) -> str:
    """/v1/tenants/{tenant_id}/... with the ids filled in."""
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


@asynccontextmanager
async def running_control_plane(settings: ControlPlaneSettings) -> AsyncIterator[ControlPlane]:
    """Opens the (already migrated) database, starts gRPC on 127.0.0.1:0, builds the app."""
    metrics = ControlPlaneMetrics()
    async with open_database(settings, migrate=False) as database:
        async with database.session_factory() as session:
            admin = await AuthService(session, settings).create_api_token(
                None, "platform", list(Scope)
            )
        server, port = create_grpc_server(settings, database, metrics)
        await server.start()
        app = create_app(settings, database, metrics)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {admin.secret}"},
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        control = ControlPlane(
            settings, database, metrics, app, client, admin.secret, channel, f"127.0.0.1:{port}"
        )
        try:
            yield control
        finally:
            for extra in control._clients:
                await extra.aclose()
            await client.aclose()
            await channel.close(grace=None)
            await server.stop(grace=None)


async def walk(control: ControlPlane, url: str, limit: int) -> tuple[list[str], int]:
    """Follows next_cursor to the end; returns the ids seen and the number of pages."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await control.client.get(url, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return seen, pages
