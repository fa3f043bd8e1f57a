"""REST behaviour on both backends: tenants, sign-in, tokens, members, streams, edges."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tidecast.edge.v1 import edge_control_pb2 as pb

from tests.control_plane.conftest import PASSWORD, ControlPlane, unique

pytestmark = pytest.mark.asyncio


async def stream_ids(control: ControlPlane, tenant: str) -> list[str]:
    page = await control.client.get(f"/v1/tenants/{tenant}/streams", params={"limit": 200})
    assert page.status_code == 200
    return [item["id"] for item in page.json()["items"]]


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


# -- tenants ----------------------------------------------------------------------------


async def test_tenants_are_created_read_renamed_and_deleted(control: ControlPlane) -> None:
    created = await control.client.post("/v1/tenants", json={"name": "  Acme Corp  "})
    assert created.status_code == 201
    tenant = created.json()
    assert tenant["name"] == "Acme Corp" and tenant["status"] == "active"
    fetched = await control.client.get(f"/v1/tenants/{tenant['id']}")
    assert fetched.json() == tenant
    listed, _ = await walk(control, "/v1/tenants", limit=200)
    assert tenant["id"] in listed

    admin = control.as_(await control.token(tenant["id"], "read", "write", "admin"))
    renamed = await admin.patch(f"/v1/tenants/{tenant['id']}", json={"name": "Acme"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme"
    assert (await admin.get("/v1/tenants")).json()["items"] == [renamed.json()]
    # A tenant cannot delete itself with a token; a platform operator can.
    assert (await admin.delete(f"/v1/tenants/{tenant['id']}")).status_code == 403
    stream = await control.stream(tenant["id"])
    deleted = await control.client.delete(f"/v1/tenants/{tenant['id']}")
    assert deleted.status_code == 204
    assert (await control.client.get(f"/v1/tenants/{tenant['id']}")).status_code == 404
    stream_url = f"/v1/tenants/{tenant['id']}/streams/{stream['id']}"
    assert (await control.client.get(stream_url)).status_code == 404
    # Its tokens went with it.
    assert (await admin.get(f"/v1/tenants/{tenant['id']}")).status_code == 401


async def test_suspension_is_for_platform_operators(control: ControlPlane) -> None:
    tenant = await control.tenant()
    admin = control.as_(await control.token(tenant, "read", "write", "admin"))
    refused = await admin.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert refused.status_code == 403
    # A refused PATCH changes nothing, not even the fields it was allowed to change.
    refused = await admin.patch(f"/v1/tenants/{tenant}", json={"name": "n", "status": "suspended"})
    assert refused.status_code == 403
    unchanged = (await control.client.get(f"/v1/tenants/{tenant}")).json()
    assert (unchanged["name"], unchanged["status"]) == ("acme", "active")
    suspended = await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended"
    restored = await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "active"})
    assert restored.json()["status"] == "active"


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


# -- streams ------------------------------------------------------------------------------


async def test_stream_lifecycle_and_key_shown_only_on_create_and_rotate(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    created = await control.stream(
        tenant, name="main", private_playback=True, transcode_profile="ladder-720"
    )
    key = created["stream_key"]
    assert key.startswith("sk_") and len(key) > 20
    assert created["ingest_url"] == f"rtmp://edge.test/live/{key}"
    assert created["playback_url"] == f"http://edge.test/hls/{created['playback_id']}/index.m3u8"
    assert created["whip_url"] == "http://edge.test:8089/whip"
    assert created["whep_url"] == f"http://edge.test:8089/whep/{created['playback_id']}"
    assert (created["enabled"], created["live"], created["recording"]) == (True, False, False)
    url = f"/v1/tenants/{tenant}/streams/{created['id']}"
    fetched = await control.client.get(url)
    assert fetched.status_code == 200
    assert "stream_key" not in fetched.json() and key not in fetched.text
    shown_with_the_key = ("stream_key", "ingest_url", "whip_url", "whep_url")
    assert {k: v for k, v in created.items() if k not in shown_with_the_key} == fetched.json()

    patched = await control.client.patch(url, json={"enabled": False, "name": "renamed"})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["name"] == "renamed"
    assert patched.json()["transcode_profile"] == "ladder-720", "unset fields are kept"
    assert patched.json()["updated_at"] >= created["updated_at"]
    cleared = await control.client.patch(url, json={"transcode_profile": ""})
    assert cleared.json()["transcode_profile"] == ""

    rotated = await control.client.post(f"{url}/rotate-key")
    assert rotated.status_code == 200
    assert rotated.json()["stream_key"] not in (key, "")
    assert rotated.json()["playback_id"] == created["playback_id"]
    assert key not in (await control.client.get(url)).text

    deleted = await control.client.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await control.client.get(url)).status_code == 404
    assert (await control.client.delete(url)).status_code == 404
    assert (await control.client.post(f"{url}/rotate-key")).status_code == 404


async def test_pagination_walks_every_stream_exactly_once(control: ControlPlane) -> None:
    tenant = await control.tenant()
    other = await control.tenant()
    await control.stream(other, name="not mine")
    ids = {(await control.stream(tenant, name=f"s{i}"))["id"] for i in range(120)}
    seen, pages = await walk(control, f"/v1/tenants/{tenant}/streams", limit=50)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == ids
    exact, pages = await walk(control, f"/v1/tenants/{tenant}/streams", limit=120)
    assert pages == 1 and set(exact) == ids
    default = (await control.client.get(f"/v1/tenants/{tenant}/streams")).json()
    assert len(default["items"]) == 50 and default["next_cursor"]


async def test_playback_tokens_are_signed_and_bounded(control: ControlPlane) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant, private_playback=True)
    url = f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens"
    issued = await control.client.post(url, json={"ttl_seconds": 600})
    assert issued.status_code == 201
    body = issued.json()
    assert body["playback_url"] == f"{stream['playback_url']}?token={body['token']}"
    assert body["token"].count(".") == 2  # a JWT
    default = await control.client.post(url, json={})
    assert default.status_code == 201 and default.json()["expires_at"] > body["expires_at"]
    too_long = await control.client.post(url, json={"ttl_seconds": 10**9})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_request"
    for ttl in (0, -1, "soon"):
        assert (await control.client.post(url, json={"ttl_seconds": ttl})).status_code == 422


# -- clusters, enrollment tokens and nodes ------------------------------------------------


async def test_clusters_are_created_listed_and_deleted(control: ControlPlane) -> None:
    name = unique("eu-west")
    created = await control.client.post("/v1/clusters", json={"name": name, "region": "eu"})
    assert created.status_code == 201
    cluster = created.json()
    assert (cluster["name"], cluster["region"]) == (name, "eu")
    assert (await control.client.get(f"/v1/clusters/{cluster['id']}")).json() == cluster
    listed, _ = await walk(control, "/v1/clusters", limit=200)
    assert cluster["id"] in listed
    duplicate = await control.client.post("/v1/clusters", json={"name": name, "region": "us"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "conflict"
    bad_name = await control.client.post("/v1/clusters", json={"name": "no spaces", "region": "x"})
    assert bad_name.status_code == 422

    node = await control.enroll(cluster["id"])
    assert (await control.client.delete(f"/v1/clusters/{cluster['id']}")).status_code == 204
    assert (await control.client.get(f"/v1/clusters/{cluster['id']}")).status_code == 404
    assert (await control.client.get(f"/v1/nodes/{node.id}")).status_code == 404
    assert (await control.client.delete(f"/v1/clusters/{cluster['id']}")).status_code == 404


async def test_duplicates_created_at_once_get_409_not_500(control: ControlPlane) -> None:
    name = unique("race")
    clusters = await asyncio.gather(
        *(control.client.post("/v1/clusters", json={"name": name, "region": "eu"}) for _ in "abc")
    )
    assert sorted(r.status_code for r in clusters) == [201, 409, 409]
    tenant = await control.tenant()
    body = {"email": f"{unique('twice')}@example.test", "role": "viewer", "password": PASSWORD}
    members = await asyncio.gather(
        *(control.client.post(f"/v1/tenants/{tenant}/members", json=body) for _ in "ab")
    )
    assert sorted(r.status_code for r in members) == [201, 409]
    assert len((await control.client.get(f"/v1/tenants/{tenant}/members")).json()) == 1


async def test_enrollment_tokens_are_bounded_and_need_a_cluster(control: ControlPlane) -> None:
    cluster = await control.cluster()
    url = f"/v1/clusters/{cluster}/enrollment-tokens"
    created = await control.client.post(url, json={"ttl_seconds": 120})
    assert created.status_code == 201
    assert created.json()["token"].startswith("et_")
    assert created.json()["cluster_id"] == cluster
    assert (await control.client.post(url, json={})).status_code == 201
    too_long = await control.client.post(url, json={"ttl_seconds": 10**9})
    assert too_long.status_code == 422
    assert (await control.client.post(url, json={"ttl_seconds": 0})).status_code == 422
    unknown = await control.client.post(
        "/v1/clusters/00000000-0000-7000-8000-000000000000/enrollment-tokens", json={}
    )
    assert unknown.status_code == 404


async def test_nodes_are_listed_drained_undrained_and_revoked(control: ControlPlane) -> None:
    cluster = await control.cluster()
    response = await control.stub.EnrollNode(
        pb.EnrollNodeRequest(
            enrollment_token=await control.enrollment_token(cluster),
            hostname="edge-7.example",
            region="eu-west",
            rtmp_url="rtmp://edge-7.example/live",
            http_url="http://edge-7.example",
            bandwidth_capacity_bps=10_000_000_000,
            version="1.2.3",
        )
    )
    other_cluster_node = await control.enroll()
    nodes = (await control.client.get("/v1/nodes", params={"cluster_id": cluster})).json()
    assert [n["id"] for n in nodes["items"]] == [response.node_id]
    node: dict[str, Any] = nodes["items"][0]
    assert node["status"] == "active" and node["last_heartbeat_at"] is None
    assert (node["hostname"], node["region"], node["version"]) == (
        "edge-7.example",
        "eu-west",
        "1.2.3",
    )
    assert node["rtmp_url"] == "rtmp://edge-7.example/live"
    assert node["bandwidth_capacity_bps"] == 10_000_000_000
    everything, _ = await walk(control, "/v1/nodes", limit=200)
    assert {response.node_id, other_cluster_node.id} <= set(everything)

    url = f"/v1/nodes/{response.node_id}"
    drained = await control.client.post(f"{url}/drain")
    assert drained.status_code == 200 and drained.json()["status"] == "draining"
    assert (await control.client.get(url)).json()["status"] == "draining"
    undrained = await control.client.post(f"{url}/undrain")
    assert undrained.json()["status"] == "active"
    revoked = await control.client.post(f"{url}/revoke")
    assert revoked.json()["status"] == "revoked"
    assert (await control.client.post(f"{url}/revoke")).json()["status"] == "revoked"
    assert (await control.client.get("/v1/nodes/nope")).status_code == 404
    assert (await control.client.post("/v1/nodes/nope/drain")).status_code == 404


# -- operations ---------------------------------------------------------------------------


async def test_health_and_request_metrics_by_route_template(control: ControlPlane) -> None:
    health = await control.as_(None).get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    tenant = await control.tenant()
    await control.client.get(f"/v1/tenants/{tenant}/streams")
    await control.client.get(f"/v1/tenants/{tenant}/streams/nope")
    await control.client.get("/v1/no-such-route")
    metrics = await control.as_(None).get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        'tidecast_control_http_requests_total{method="GET",'
        'route="/v1/tenants/{tenant_id}/streams",status="200"} 1.0'
    ) in text
    assert (
        'tidecast_control_http_requests_total{method="GET",'
        'route="/v1/tenants/{tenant_id}/streams/{stream_id}",status="404"} 1.0'
    ) in text
    assert 'route="unmatched",status="404"' in text
    assert 'tidecast_control_http_request_duration_seconds_count{method="POST",' in text
    assert tenant not in text and "nope" not in text
