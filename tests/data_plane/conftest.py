"""The data plane on the in-process bus and the session's chDB warehouse, beside a real
control plane (SQLite) that its Directory client asks over gRPC.

chDB lets a process open one data directory only, so every test of the session shares one
warehouse (`chdb_warehouse`) and keeps out of the others' way with its own tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from tidecast.events.v1 import events_pb2 as ev
from tidecast.events.v1 import ingress_pb2 as ipb

from control_plane.app import open_database
from data_plane.serve import ALL_ROLES, DataPlane, Role, running_data_plane
from data_plane.settings import DataPlaneSettings
from data_plane.warehouse.base import Warehouse
from tests.control_plane.running import ControlPlane, Node, make_settings, running_control_plane

INGRESS_METHOD = "/tidecast.events.v1.EventIngress/PublishEvents"


@pytest.fixture(scope="session")
def control_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("data-plane-control") / "control.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def migrate() -> None:
        async with open_database(make_settings(url), migrate=True):
            pass

    asyncio.run(migrate())
    return url


@pytest_asyncio.fixture
async def control(control_database_url: str) -> AsyncIterator[ControlPlane]:
    async with running_control_plane(make_settings(control_database_url)) as control:
        yield control


def data_settings(control: ControlPlane, **overrides: Any) -> DataPlaneSettings:
    values: dict[str, Any] = {
        "bus": "memory",
        "events_topic": f"events-{uuid.uuid4().hex[:8]}",
        "control_target": control.grpc_target,
        "control_token": SecretStr(control.admin_token),
        "ingress_port": 0,
        "api_port": 0,
        "ingest_max_wait_ms": 50,
        "viewer_idle_timeout_s": 60,
        # Decoding and ingress workers are spawned processes (about a second each); the
        # tests that are about them ask for them, and the end-to-end tests run the default.
        "ingest_decode_workers": 0,
        "ingress_workers": 0,
    }
    values.update(overrides)
    return DataPlaneSettings(**values)


@dataclass
class Stack:
    control: ControlPlane
    plane: DataPlane
    settings: DataPlaneSettings
    channel: grpc.aio.Channel
    api: httpx.AsyncClient

    @property
    def warehouse(self) -> Warehouse:
        assert self.plane.warehouse is not None
        return self.plane.warehouse

    @property
    def ingress_target(self) -> str:
        return f"127.0.0.1:{self.plane.ingress_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.plane.api_port}"

    async def publish(
        self, node: Node, events: list[ev.Event], *, raw: bytes | None = None
    ) -> ipb.PublishEventsResponse:
        call = self.channel.unary_unary(
            INGRESS_METHOD,
            request_serializer=lambda b: b,
            response_deserializer=ipb.PublishEventsResponse.FromString,
        )
        body = (
            raw if raw is not None else ipb.PublishEventsRequest(events=events).SerializeToString()
        )
        response: ipb.PublishEventsResponse = await call(body, metadata=node.metadata, timeout=10)
        return response

    async def stored_events(self, tenant_id: str) -> int:
        result = await self.warehouse.query(
            "SELECT uniqExact(event_id) FROM events WHERE tenant_id = {t:String}", {"t": tenant_id}
        )
        return int(result.scalar() or 0)

    async def wait_stored(self, tenant_id: str, count: int, timeout_s: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (stored := await self.stored_events(tenant_id)) < count:
            if loop.time() > deadline:
                raise AssertionError(f"{stored} of {count} events stored for {tenant_id}")
            await asyncio.sleep(0.05)

    def as_(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=10)


@contextlib.asynccontextmanager
async def running_stack(
    control: ControlPlane, settings: DataPlaneSettings, warehouse: Warehouse
) -> AsyncIterator[Stack]:
    """The data plane with every role on `settings`, and clients of its ingress and API."""
    async with running_data_plane(settings, ALL_ROLES, warehouse=warehouse) as plane:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{plane.ingress_port}")
        api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{plane.api_port}", timeout=10)
        try:
            yield Stack(control, plane, settings, channel, api)
        finally:
            await api.aclose()
            await channel.close(grace=None)


@pytest_asyncio.fixture
async def stack(
    request: pytest.FixtureRequest, control: ControlPlane, chdb_warehouse: Warehouse
) -> AsyncIterator[Stack]:
    """The data plane with every role; `indirect` parameters are ingress workers."""
    settings = data_settings(control, ingress_workers=getattr(request, "param", 0))
    async with running_stack(control, settings, chdb_warehouse) as stack:
        yield stack


__all__ = ["Role", "Stack", "data_settings", "running_stack"]
