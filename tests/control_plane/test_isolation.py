"""Tenants never see each other: every tenant-scoped route, enumerated from the app."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.control_plane.conftest import ControlPlane

pytestmark = pytest.mark.asyncio

#: Valid bodies, so that a refusal comes from scoping and not from validation. A new route
#: with a required body fails the matrix until it is listed here.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/tenants/{tenant_id}/streams"): {"name": "x"},
    ("PATCH", "/v1/tenants/{tenant_id}/streams/{stream_id}"): {"name": "y"},
    ("POST", "/v1/tenants/{tenant_id}/streams/{stream_id}/playback-tokens"): {"ttl_seconds": 60},
    ("POST", "/v1/tenants/{tenant_id}/tokens"): {"name": "x", "scopes": ["read"]},
    ("POST", "/v1/tenants/{tenant_id}/members"): {
        "email": "m@b.test",
        "password": "p" * 12,
        "role": "viewer",
    },
    ("PATCH", "/v1/tenants/{tenant_id}"): {"name": "renamed"},
}
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


def tenant_routes(control: ControlPlane) -> list[tuple[str, str]]:
    """Every tenant-scoped operation in the OpenAPI document (so new routes are covered)."""
    app = control.client._transport.app  # type: ignore[attr-defined]
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/v1/tenants/{tenant_id}"):
            routes.extend((method.upper(), path) for method in sorted(operations))
    assert len(routes) >= 15, routes
    return routes


async def tenant_with_everything(control: ControlPlane, name: str) -> dict[str, str]:
    tenant_id = await control.tenant(name)
    stream = await control.stream(tenant_id, name=f"{name}-stream")
    token = await control.client.post(
        f"/v1/tenants/{tenant_id}/tokens", json={"name": "t", "scopes": ["read"]}
    )
    member = await control.client.post(
        f"/v1/tenants/{tenant_id}/members",
        json={"email": f"{name}@example.test", "password": "correct-horse-1", "role": "viewer"},
    )
    assert member.status_code == 201, member.text
    return {
        "tenant_id": tenant_id,
        "stream_id": stream["id"],
        "token_id": token.json()["id"],
        "user_id": member.json()["user_id"],
        "stream_name": stream["name"],
    }


def fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


async def test_a_token_of_tenant_a_gets_404_for_everything_of_tenant_b(
    control: ControlPlane,
) -> None:
    a = await tenant_with_everything(control, "alpha")
    b = await tenant_with_everything(control, "bravo")
    a_token = await control.token(a["tenant_id"], "read", "write", "admin")
    client = control.as_(a_token)
    checked = 0
    for method, path in tenant_routes(control):
        url = fill(path, b)
        response = await client.request(method, url, json=BODIES.get((method, path)))
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] == "not_found"
        for secret_or_id in (b["stream_id"], b["token_id"], "bravo"):
            assert secret_or_id not in response.text
        checked += 1
    assert checked >= 15
    # Tenant B's things are all still there.
    for path in (
        "/v1/tenants/{tenant_id}/streams/{stream_id}",
        "/v1/tenants/{tenant_id}/tokens/{token_id}",
    ):
        assert (await control.client.get(fill(path, b))).status_code == 200
    listing = await client.get("/v1/tenants")
    assert [t["id"] for t in listing.json()["items"]] == [a["tenant_id"]]


async def test_a_read_scoped_token_cannot_write_but_can_read(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    reader = control.as_(await control.token(own["tenant_id"], "read"))
    for method, path in tenant_routes(control):
        url = fill(path, own)
        response = await reader.request(method, url, json=BODIES.get((method, path)))
        if method in WRITES and not path.endswith("/playback-tokens"):
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "permission_denied"
        elif path.endswith("/tokens") or "/tokens/" in path:
            assert response.status_code == 403, (method, path)  # token admin needs admin
        else:
            assert response.status_code in (200, 201), (method, path, response.text)
    stream = await control.client.get(fill("/v1/tenants/{tenant_id}/streams/{stream_id}", own))
    assert stream.json()["name"] == own["stream_name"], "a refused write changed state"


async def test_a_revoked_token_is_refused_everywhere(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    created = await control.client.post(
        f"/v1/tenants/{own['tenant_id']}/tokens", json={"name": "t", "scopes": ["read", "write"]}
    )
    token = created.json()["token"]
    client = control.as_(token)
    assert (await client.get(f"/v1/tenants/{own['tenant_id']}/streams")).status_code == 200
    revoked = await control.client.delete(
        f"/v1/tenants/{own['tenant_id']}/tokens/{created.json()['id']}"
    )
    assert revoked.json()["revoked_at"] is not None
    for method, path in [*tenant_routes(control), ("GET", "/v1/me"), ("GET", "/v1/tenants")]:
        response = await client.request(method, fill(path, own), json=BODIES.get((method, path)))
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_platform_routes_refuse_tenant_tokens(control: ControlPlane) -> None:
    tenant = await control.tenant()
    client = control.as_(await control.token(tenant, "read", "write", "admin"))
    for method, path, body in [
        ("GET", "/v1/clusters", None),
        ("POST", "/v1/clusters", {"name": "c", "region": "r"}),
        ("GET", "/v1/nodes", None),
        ("POST", "/v1/nodes/x/drain", None),
        ("POST", "/v1/tenants", {"name": "other"}),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
    suspend = await client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert suspend.status_code == 403


async def test_no_credentials_and_garbage_credentials_get_401(control: ControlPlane) -> None:
    tenant = await control.tenant()
    anonymous = control.as_("")
    anonymous.headers.pop("Authorization")
    for client in (
        anonymous,
        control.as_("tc_" + "0" * 32 + ".nope"),
        control.as_("x.y.z"),
        control.as_("tc_garbage"),
    ):
        response = await client.get(f"/v1/tenants/{tenant}/streams")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
