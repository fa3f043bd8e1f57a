"""Tenants never see each other, scopes hold on every route, revoked credentials are dead,
and platform routes are for platform operators. Routes come from the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from tests.control_plane.routes import (
    PUBLIC_PATHS,
    Operation,
    operations,
    platform_operations,
    tenant_operations,
)
from tests.control_plane.running import ControlPlane, fill, unique

pytestmark = pytest.mark.asyncio

#: Ids for path parameters that are not tenant resources.
OTHER_IDS = {"cluster_id": "00000000-0000-7000-8000-000000000000", "node_id": "n-unknown"}


async def tenant_with_everything(control: ControlPlane, name: str) -> dict[str, str]:
    """A tenant with a stream, an API token and a member: one id per kind of path parameter."""
    tenant_id = await control.tenant(name)
    stream = await control.stream(tenant_id, name=f"{name}-stream")
    token = await control.client.post(
        f"/v1/tenants/{tenant_id}/tokens", json={"name": f"{name}-token", "scopes": ["read"]}
    )
    assert token.status_code == 201, token.text
    member = await control.member(tenant_id, f"{unique(name)}@example.test", "viewer")
    return {
        **OTHER_IDS,
        "tenant_id": tenant_id,
        "tenant_name": name,
        "stream_id": stream["id"],
        "stream_name": stream["name"],
        "token_id": token.json()["id"],
        "token_name": token.json()["name"],
        "user_id": member["user_id"],
        "email": member["email"],
    }


async def call(client: httpx.AsyncClient, op: Operation, ids: dict[str, str]) -> httpx.Response:
    try:
        url = fill(op.path, ids)
    except KeyError as missing:
        raise AssertionError(f"{op}: the matrix has no id for {missing}; add one") from None
    return await client.request(op.method, url, json=op.body)


async def assert_untouched(control: ControlPlane, b: dict[str, str]) -> None:
    """Tenant B is exactly as it was created."""
    base = f"/v1/tenants/{b['tenant_id']}"
    tenant = await control.client.get(base)
    assert tenant.json()["name"] == b["tenant_name"]
    assert tenant.json()["status"] == "active"
    streams = (await control.client.get(f"{base}/streams")).json()["items"]
    assert [(s["id"], s["name"]) for s in streams] == [(b["stream_id"], b["stream_name"])]
    tokens = (await control.client.get(f"{base}/tokens")).json()["items"]
    assert (b["token_id"], b["token_name"], None) in [
        (t["id"], t["name"], t["revoked_at"]) for t in tokens
    ]
    members = (await control.client.get(f"{base}/members")).json()
    assert [m["user_id"] for m in members] == [b["user_id"]]


async def assert_b_is_invisible(
    control: ControlPlane, client: httpx.AsyncClient, a: dict[str, str], b: dict[str, str]
) -> int:
    """Every tenant route called with B's ids answers 404. Called with A's own tenant id
    but B's resource ids, it answers exactly as it does for ids that exist nowhere (404, or
    403 where the credential may not make that call at all). Nothing about B shows."""
    checked = 0
    nowhere = {k: "00000000-0000-7000-8000-00000000dead" for k in b}
    for op in tenant_operations(control.app):
        response = await call(client, op, b)
        assert response.status_code == 404, (str(op), response.text)
        assert response.json()["error"]["code"] == "not_found"
        responses = [response]
        if op.path.count("{") > 1:
            mixed = await call(client, op, {**b, "tenant_id": a["tenant_id"]})
            baseline = await call(client, op, {**nowhere, "tenant_id": a["tenant_id"]})
            assert mixed.status_code in (403, 404), (str(op), mixed.text)
            assert (mixed.status_code, mixed.json()) == (
                baseline.status_code,
                baseline.json(),
            ), str(op)
            responses.append(mixed)
        for value in ("stream_id", "token_id", "user_id", "email", "stream_name"):
            for seen in responses:
                assert b[value] not in seen.text, (str(op), value)
        checked += len(responses)
    await assert_untouched(control, b)
    return checked


async def test_a_token_of_tenant_a_gets_404_for_everything_of_tenant_b(
    control: ControlPlane,
) -> None:
    a = await tenant_with_everything(control, "alpha")
    b = await tenant_with_everything(control, "bravo")
    client = control.as_(await control.token(a["tenant_id"], "read", "write", "admin"))
    assert await assert_b_is_invisible(control, client, a, b) >= 25
    listing = await client.get("/v1/tenants")
    assert [t["id"] for t in listing.json()["items"]] == [a["tenant_id"]]
    # Nor can it reach the platform's own token through its tenant.
    platform_token = (await control.client.get("/v1/me")).json()["id"]
    for method in ("GET", "DELETE"):
        url = f"/v1/tenants/{a['tenant_id']}/tokens/{platform_token}"
        assert (await client.request(method, url)).status_code == 404
    assert (await control.client.get("/v1/me")).status_code == 200


async def test_an_owner_of_tenant_a_gets_404_for_everything_of_tenant_b(
    control: ControlPlane,
) -> None:
    a = await tenant_with_everything(control, "alpha")
    b = await tenant_with_everything(control, "bravo")
    owner = f"{unique('owner')}@example.test"
    await control.member(a["tenant_id"], owner, "owner")
    client = control.as_((await control.login(owner))["access_token"])
    assert await assert_b_is_invisible(control, client, a, b) >= 25
    listing = await client.get("/v1/tenants")
    assert [t["id"] for t in listing.json()["items"]] == [a["tenant_id"]]


@pytest.mark.parametrize(
    "scopes",
    [("read",), ("read", "write"), ("read", "write", "admin")],
    ids=["read", "read+write", "admin"],
)
async def test_tenant_tokens_are_held_to_their_scopes_on_every_route(
    control: ControlPlane, scopes: tuple[str, ...]
) -> None:
    own = await tenant_with_everything(control, "alpha")
    client = control.as_(await control.token(own["tenant_id"], *scopes))
    granted = set(scopes)
    # Reads first: the writes a token may make (deleting its stream...) would turn later
    # reads into 404s.
    ordered = sorted(tenant_operations(control.app), key=lambda op: op.is_write)
    for op in ordered:
        response = await call(client, op, own)
        if op.allowed_with(granted):
            assert response.status_code not in (401, 403), (str(op), response.text)
            assert response.status_code < 500, (str(op), response.text)
            if not op.is_write:
                assert response.status_code == 200, (str(op), response.text)
        else:
            assert response.status_code == 403, (str(op), response.status_code, response.text)
            assert response.json()["error"]["code"] == "permission_denied"
    if granted == {"read"}:
        # Nothing a read-only token was refused changed anything.
        await assert_untouched(control, own)


async def test_a_viewer_member_reads_but_cannot_write(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    client = control.as_((await control.login(own["email"]))["access_token"])
    for op in tenant_operations(control.app):
        response = await call(client, op, own)
        if op.required == "read":
            assert response.status_code < 300, (str(op), response.text)
        else:
            assert response.status_code == 403, (str(op), response.status_code, response.text)
    await assert_untouched(control, own)


async def test_a_revoked_token_is_refused_everywhere(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    created = await control.client.post(
        f"/v1/tenants/{own['tenant_id']}/tokens",
        json={"name": "t", "scopes": ["read", "write", "admin"]},
    )
    client = control.as_(created.json()["token"])
    assert (await client.get(f"/v1/tenants/{own['tenant_id']}/streams")).status_code == 200
    revoked = await control.client.delete(
        f"/v1/tenants/{own['tenant_id']}/tokens/{created.json()['id']}"
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    checked = 0
    for op in operations(control.app):
        if op.path in PUBLIC_PATHS:
            continue
        response = await call(client, op, own)
        assert response.status_code == 401, (str(op), response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthenticated"
        checked += 1
    assert checked >= 28
    await assert_untouched(control, own)


async def test_every_route_but_the_public_ones_needs_credentials(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    fakes = [
        None,
        "",
        "tc_" + "0" * 32 + ".nope",
        "tc_garbage",
        "x.y.z",
        "rt_not-an-access-token",
    ]
    for op in operations(control.app):
        if op.path in PUBLIC_PATHS:
            continue
        for fake in fakes:
            response = await call(control.as_(fake), op, own)
            assert response.status_code == 401, (str(op), fake, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"
    basic = await control.as_(None).get(
        "/v1/me", headers={"Authorization": f"Basic {control.admin_token}"}
    )
    assert basic.status_code == 401


async def test_platform_routes_refuse_tenant_credentials(control: ControlPlane) -> None:
    own = await tenant_with_everything(control, "alpha")
    cluster = await control.cluster()
    node = await control.enroll(cluster)
    ids = {**own, "cluster_id": cluster, "node_id": node.id}
    owner = f"{unique('owner')}@example.test"
    await control.member(own["tenant_id"], owner, "owner")
    clients = {
        "tenant admin token": control.as_(
            await control.token(own["tenant_id"], "read", "write", "admin")
        ),
        "tenant owner": control.as_((await control.login(owner))["access_token"]),
    }
    for who, client in clients.items():
        for op in platform_operations(control.app):
            response = await call(client, op, ids)
            assert response.status_code == 403, (who, str(op), response.text)
            assert response.json()["error"]["code"] == "permission_denied"
        suspend = await client.patch(
            f"/v1/tenants/{own['tenant_id']}", json={"status": "suspended"}
        )
        assert suspend.status_code == 403, who
    token_client = clients["tenant admin token"]
    refused = await token_client.post("/v1/tenants", json={"name": "other"})
    assert refused.status_code == 403
    # Nothing was changed by the refused calls.
    node_now = (await control.client.get(f"/v1/nodes/{node.id}")).json()
    assert node_now["status"] == "active"
    assert (await control.client.get(f"/v1/clusters/{cluster}")).status_code == 200
    assert (await control.client.get(f"/v1/tenants/{own['tenant_id']}")).json()[
        "status"
    ] == "active"
