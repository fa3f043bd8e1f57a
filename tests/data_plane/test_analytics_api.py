"""The analytics API: every tenant-scoped route refuses strangers and other tenants, and
bad parameters get a 422 naming the field."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.data_plane.conftest import Stack

pytestmark = pytest.mark.asyncio

REQUIRED = {"stream_id": "s1"}


async def tenant_routes(stack: Stack) -> list[str]:
    schema = (await stack.api.get("/openapi.json")).json()
    routes = [p for p in schema["paths"] if p.startswith("/v1/tenants/{tenant_id}/")]
    assert len(routes) >= 6, routes
    return routes


def url(path: str, tenant: str) -> str:
    return re.sub(r"\{tenant_id\}", tenant, path)


async def test_every_route_refuses_missing_wrong_and_foreign_credentials(stack: Stack) -> None:
    control = stack.control
    acme = await control.tenant("acme")
    globex = await control.tenant("globex")
    acme_reader = await control.token(acme, "read")
    globex_admin = await control.token(globex, "read", "write", "admin")
    async with (
        stack.as_(None) as anonymous,
        stack.as_("tc_forged.secret") as forged,
        stack.as_(globex_admin) as stranger,
        stack.as_(acme_reader) as reader,
    ):
        for path in await tenant_routes(stack):
            target = url(path, acme)
            no_auth = await anonymous.get(target, params=REQUIRED)
            assert no_auth.status_code == 401, (path, no_auth.text)
            assert no_auth.json()["error"]["code"] == "unauthenticated"
            assert (await forged.get(target, params=REQUIRED)).status_code == 401, path
            foreign = await stranger.get(target, params=REQUIRED)
            assert foreign.status_code == 404, (path, foreign.text)
            ok = await reader.get(target, params=REQUIRED)
            assert ok.status_code == 200, (path, ok.text)
            missing_tenant = await reader.get(url(path, "no-such-tenant"), params=REQUIRED)
            assert missing_tenant.status_code == 404, path


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        (
            "viewers/timeseries",
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "start",
        ),
        (
            "viewers/timeseries",
            {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "end",
        ),
        ("viewers/timeseries", {"start": "yesterday"}, "start"),
        ("viewers/current", {"stream_id": "x' OR 1=1 --"}, "stream_id"),
        ("ingest-health", {}, "stream_id"),
        *(
            (route, {"end": end, **REQUIRED}, "end")
            for route in ("usage", "viewers/timeseries", "sessions", "ingest-health")
            for end in ("9999-12-31T23:59:59Z", "0001-01-01T00:30:00Z")
        ),
        ("viewers/unique", {"start": "0001-01-01T00:00:00Z"}, "start"),
        ("sessions", {"limit": "0"}, "limit"),
        ("sessions", {"limit": "100000"}, "limit"),
    ],
)
async def test_bad_parameters_get_422_naming_the_field(
    stack: Stack, route: str, params: dict[str, str], field: str
) -> None:
    tenant = await stack.control.tenant()
    token = await stack.control.token(tenant, "read")
    async with stack.as_(token) as api:
        response: httpx.Response = await api.get(
            f"/v1/tenants/{tenant}/analytics/{route}", params=params
        )
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert field in fields, fields
