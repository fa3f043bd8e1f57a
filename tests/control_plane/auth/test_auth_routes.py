"""Auth routes on both backends: sign-in and sessions, API tokens, members and roles."""

from __future__ import annotations

import asyncio

import pytest

from tests.control_plane.running import ControlPlane, unique, walk

pytestmark = pytest.mark.asyncio


async def stream_ids(control: ControlPlane, tenant: str) -> list[str]:
    page = await control.client.get(f"/v1/tenants/{tenant}/streams", params={"limit": 200})
    assert page.status_code == 200
    return [item["id"] for item in page.json()["items"]]


# -- sign-in and sessions -----------------------------------------------------------------


async def test_login_refresh_rotation_and_reuse_revokes_the_family(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    email = f"{unique('Ada')}@Example.test"
    await control.member(tenant, email, "admin")
    wrong = await control.client.post(
        "/v1/auth/login", json={"email": email.lower(), "password": "nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthenticated"
    nobody = await control.client.post(
        "/v1/auth/login", json={"email": "nobody@example.test", "password": "nope"}
    )
    assert nobody.status_code == 401
    assert nobody.json()["error"]["message"] == wrong.json()["error"]["message"]

    first = await control.login(email.lower())
    assert first["token_type"] == "bearer" and first["expires_in"] > 0
    user = control.as_(first["access_token"])
    me = (await user.get("/v1/me")).json()
    assert me["kind"] == "user" and me["platform_admin"] is False
    assert me["tenants"] == [{"tenant_id": tenant, "role": "admin"}]
    assert (await user.post(f"/v1/tenants/{tenant}/streams", json={"name": "x"})).status_code == 201

    second = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    newer = second.json()
    assert newer["refresh_token"] != first["refresh_token"]
    assert (await control.as_(newer["access_token"]).get("/v1/me")).status_code == 200
    replay = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    # The replay ended the whole family: the token issued by the rotation is dead too.
    after = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]}
    )
    assert after.status_code == 401
    garbage = await control.client.post("/v1/auth/refresh", json={"refresh_token": "rt_nope"})
    assert garbage.status_code == 401


async def test_a_refresh_token_used_twice_at_once_yields_one_session(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    email = f"{unique('race')}@example.test"
    await control.member(tenant, email, "viewer")
    pair = await control.login(email)
    body = {"refresh_token": pair["refresh_token"]}
    responses = await asyncio.gather(
        *(control.client.post("/v1/auth/refresh", json=body) for _ in range(4))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 401, 401, 401], [r.text for r in responses]


async def test_a_user_who_creates_a_tenant_owns_it(control: ControlPlane) -> None:
    seed = await control.tenant()
    email = f"{unique('founder')}@example.test"
    await control.member(seed, email, "viewer")
    user = control.as_((await control.login(email))["access_token"])
    created = await user.post("/v1/tenants", json={"name": "mine"})
    assert created.status_code == 201
    me = (await user.get("/v1/me")).json()
    assert {"tenant_id": created.json()["id"], "role": "owner"} in me["tenants"]
    assert (await user.delete(f"/v1/tenants/{created.json()['id']}")).status_code == 204


async def test_me_describes_tokens_and_platform_operators(control: ControlPlane) -> None:
    platform = (await control.client.get("/v1/me")).json()
    assert platform["kind"] == "api_token" and platform["platform_admin"] is True
    tenant = await control.tenant()
    me = (await control.as_(await control.token(tenant, "write", "read")).get("/v1/me")).json()
    assert me["kind"] == "api_token" and me["platform_admin"] is False
    assert me["scopes"] == ["read", "write"]


# -- API tokens ---------------------------------------------------------------------------


async def test_api_tokens_are_shown_once_record_use_and_die_when_revoked(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    created = await control.client.post(
        f"/v1/tenants/{tenant}/tokens", json={"name": "ci", "scopes": ["read", "read"]}
    )
    assert created.status_code == 201
    token = created.json()
    secret = token.pop("token")
    assert token["last_used_at"] is None and token["revoked_at"] is None
    assert token["scopes"] == ["read"] and token["tenant_id"] == tenant
    client = control.as_(secret)
    assert (await client.get(f"/v1/tenants/{tenant}/streams")).status_code == 200

    listing = await control.client.get(f"/v1/tenants/{tenant}/tokens")
    fetched = await control.client.get(f"/v1/tenants/{tenant}/tokens/{token['id']}")
    for response in (listing, fetched):
        assert response.status_code == 200
        assert secret not in response.text and secret.split(".", 1)[1] not in response.text
    assert "token" not in fetched.json() and "token" not in listing.json()["items"][0]
    assert fetched.json()["last_used_at"] is not None
    assert [t["id"] for t in listing.json()["items"]] == [token["id"]]

    revoked = await control.client.delete(f"/v1/tenants/{tenant}/tokens/{token['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await client.get(f"/v1/tenants/{tenant}/streams")
    assert refused.status_code == 401
    again = await control.client.delete(f"/v1/tenants/{tenant}/tokens/{token['id']}")
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    # The secret cannot be replayed against another token id either.
    forged = "tc_" + token["id"].replace("-", "") + "." + "x" * 43
    assert (await control.as_(forged).get("/v1/me")).status_code == 401


async def test_token_listing_pages(control: ControlPlane) -> None:
    tenant = await control.tenant()
    ids = set()
    for i in range(5):
        response = await control.client.post(
            f"/v1/tenants/{tenant}/tokens", json={"name": f"t{i}", "scopes": ["read"]}
        )
        ids.add(response.json()["id"])
    seen, pages = await walk(control, f"/v1/tenants/{tenant}/tokens", limit=2)
    assert pages == 3 and len(seen) == len(set(seen)) == 5 and set(seen) == ids


# -- members and roles --------------------------------------------------------------------


async def test_members_roles_and_who_may_change_them(control: ControlPlane) -> None:
    tenant = await control.tenant()
    owner_email = f"{unique('owner')}@example.test"
    admin_email = f"{unique('admin')}@example.test"
    viewer_email = f"{unique('viewer')}@example.test"
    await control.member(tenant, owner_email, "owner")
    admin_member = await control.member(tenant, admin_email, "admin")
    viewer_member = await control.member(tenant, viewer_email, "viewer")
    duplicate = await control.client.post(
        f"/v1/tenants/{tenant}/members", json={"email": viewer_email, "role": "admin"}
    )
    assert duplicate.status_code == 409

    owner = control.as_((await control.login(owner_email))["access_token"])
    admin = control.as_((await control.login(admin_email))["access_token"])
    viewer = control.as_((await control.login(viewer_email))["access_token"])
    members_url = f"/v1/tenants/{tenant}/members"

    listed = (await viewer.get(members_url)).json()
    assert sorted((m["email"], m["role"]) for m in listed) == sorted(
        [(owner_email, "owner"), (admin_email, "admin"), (viewer_email, "viewer")]
    )
    assert all("password" not in str(m) for m in listed)

    # Viewers read and write nothing.
    assert (await viewer.get(f"/v1/tenants/{tenant}/streams")).status_code == 200
    for method, url, body in [
        ("POST", f"/v1/tenants/{tenant}/streams", {"name": "x"}),
        ("POST", members_url, {"email": admin_email, "role": "viewer"}),
        ("PATCH", f"/v1/tenants/{tenant}", {"name": "x"}),
    ]:
        response = await viewer.request(method, url, json=body)
        assert response.status_code == 403, (method, url)
        assert response.json()["error"]["code"] == "permission_denied"
    assert await stream_ids(control, tenant) == []

    # Admins manage streams and tokens but neither make owners nor remove people.
    assert (await admin.post(f"/v1/tenants/{tenant}/streams", json={"name": "x"})).status_code == (
        201
    )
    promote = await admin.post(members_url, json={"email": viewer_email, "role": "owner"})
    assert promote.status_code == 403
    removal = await admin.delete(f"{members_url}/{viewer_member['user_id']}")
    assert removal.status_code == 403

    # Owners remove members; the removed user loses the tenant at once.
    assert (await owner.delete(f"{members_url}/{admin_member['user_id']}")).status_code == 204
    gone = await admin.get(f"/v1/tenants/{tenant}/streams")
    assert gone.status_code == 404
    assert (await admin.get("/v1/me")).json()["tenants"] == []
    assert (await owner.delete(f"{members_url}/{admin_member['user_id']}")).status_code == 404
    assert len((await owner.get(members_url)).json()) == 2


async def test_adding_an_unknown_user_without_a_password_is_refused(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    response = await control.client.post(
        f"/v1/tenants/{tenant}/members",
        json={"email": f"{unique('ghost')}@example.test", "role": "viewer"},
    )
    assert response.status_code == 404
    assert (await control.client.get(f"/v1/tenants/{tenant}/members")).json() == []
