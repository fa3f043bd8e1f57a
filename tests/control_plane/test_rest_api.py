"""REST behaviour on both backends."""

from __future__ import annotations

import pytest
from tidecast.edge.v1 import edge_control_pb2 as pb

from tests.control_plane.conftest import ControlPlane, node_metadata

pytestmark = pytest.mark.asyncio


async def stream_count(control: ControlPlane, tenant: str) -> int:
    page = await control.client.get(f"/v1/tenants/{tenant}/streams", params={"limit": 200})
    return len(page.json()["items"])


async def test_stream_lifecycle_and_key_shown_only_on_create_and_rotate(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    created = await control.stream(tenant, name="main", private_playback=True)
    key = created["stream_key"]
    assert key.startswith("sk_")
    assert created["ingest_url"] == f"rtmp://edge.test/live/{key}"
    assert created["playback_url"] == (f"http://edge.test/hls/{created['playback_id']}/index.m3u8")
    fetched = await control.client.get(f"/v1/tenants/{tenant}/streams/{created['id']}")
    assert fetched.status_code == 200
    assert "stream_key" not in fetched.json() and key not in fetched.text
    patched = await control.client.patch(
        f"/v1/tenants/{tenant}/streams/{created['id']}", json={"enabled": False, "name": "renamed"}
    )
    assert patched.json()["enabled"] is False and patched.json()["name"] == "renamed"
    rotated = await control.client.post(f"/v1/tenants/{tenant}/streams/{created['id']}/rotate-key")
    assert rotated.status_code == 200
    assert rotated.json()["stream_key"] != key
    deleted = await control.client.delete(f"/v1/tenants/{tenant}/streams/{created['id']}")
    assert deleted.status_code == 204
    gone = await control.client.get(f"/v1/tenants/{tenant}/streams/{created['id']}")
    assert gone.status_code == 404


async def test_pagination_walks_every_stream_exactly_once(control: ControlPlane) -> None:
    tenant = await control.tenant()
    ids = {(await control.stream(tenant, name=f"s{i}"))["id"] for i in range(120)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = (await control.client.get(f"/v1/tenants/{tenant}/streams", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == ids
    bad = await control.client.get(f"/v1/tenants/{tenant}/streams", params={"limit": 0})
    assert bad.status_code == 422


async def test_bad_bodies_get_422_with_field_and_reason_and_change_nothing(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    url = f"/v1/tenants/{tenant}/streams"
    cases = [
        ({"name": 5}, "body.name"),
        ({}, "body.name"),
        ({"name": "x", "colour": "red"}, "body.colour"),
        ({"name": "x", "enabled": "maybe"}, "body.enabled"),
        ({"name": "x", "transcode_profile": "Bad Profile!"}, "body.transcode_profile"),
        ({"name": ""}, "body.name"),
    ]
    for body, field in cases:
        response = await control.client.post(url, json=body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert field in [d["field"] for d in error["details"]], error
        assert all(d["reason"] for d in error["details"])
    malformed = await control.client.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "validation_failed"
    too_big = await control.client.post(url, json={"name": "x" * 10_000})
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    assert await stream_count(control, tenant) == 0


async def test_login_refresh_rotation_and_reuse_detection(control: ControlPlane) -> None:
    tenant = await control.tenant()
    member = await control.client.post(
        f"/v1/tenants/{tenant}/members",
        json={"email": "Ada@Example.test", "password": "correct-horse-1", "role": "admin"},
    )
    assert member.status_code == 201
    wrong = await control.client.post(
        "/v1/auth/login", json={"email": "ada@example.test", "password": "nope"}
    )
    assert wrong.status_code == 401
    login = await control.client.post(
        "/v1/auth/login", json={"email": "ada@example.test", "password": "correct-horse-1"}
    )
    assert login.status_code == 200
    pair = login.json()
    user = control.as_(pair["access_token"])
    me = (await user.get("/v1/me")).json()
    assert me["kind"] == "user" and me["tenants"] == [{"tenant_id": tenant, "role": "admin"}]
    assert (await user.post(f"/v1/tenants/{tenant}/streams", json={"name": "x"})).status_code == 201
    refreshed = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200
    newer = refreshed.json()
    replay = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert replay.status_code == 401
    # The replay revoked the whole family, including the token just issued.
    after = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]}
    )
    assert after.status_code == 401


async def test_viewer_role_reads_but_cannot_write(control: ControlPlane) -> None:
    tenant = await control.tenant()
    await control.client.post(
        f"/v1/tenants/{tenant}/members",
        json={"email": "v@example.test", "password": "correct-horse-1", "role": "viewer"},
    )
    login = await control.client.post(
        "/v1/auth/login", json={"email": "v@example.test", "password": "correct-horse-1"}
    )
    viewer = control.as_(login.json()["access_token"])
    assert (await viewer.get(f"/v1/tenants/{tenant}/streams")).status_code == 200
    refused = await viewer.post(f"/v1/tenants/{tenant}/streams", json={"name": "x"})
    assert refused.status_code == 403
    assert await stream_count(control, tenant) == 0


async def test_api_tokens_are_shown_once_and_record_last_use(control: ControlPlane) -> None:
    tenant = await control.tenant()
    created = await control.client.post(
        f"/v1/tenants/{tenant}/tokens", json={"name": "ci", "scopes": ["read"]}
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    assert created.json()["last_used_at"] is None
    assert (await control.as_(secret).get(f"/v1/tenants/{tenant}/streams")).status_code == 200
    listing = await control.client.get(f"/v1/tenants/{tenant}/tokens")
    assert secret not in listing.text and secret.split(".")[1] not in listing.text
    [token] = listing.json()["items"]
    assert token["last_used_at"] is not None
    assert token["scopes"] == ["read"]


async def test_playback_tokens_are_signed_and_bounded(control: ControlPlane) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant, private_playback=True)
    url = f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens"
    issued = await control.client.post(url, json={"ttl_seconds": 600})
    assert issued.status_code == 201
    assert issued.json()["playback_url"].endswith(f"?token={issued.json()['token']}")
    too_long = await control.client.post(url, json={"ttl_seconds": 10**9})
    assert too_long.status_code == 422


async def test_clusters_nodes_drain_and_revoke(control: ControlPlane) -> None:
    credential = await control.enroll("eu-1")
    nodes = (await control.client.get("/v1/nodes")).json()["items"]
    assert len(nodes) == 1 and nodes[0]["status"] == "active"
    node_id = nodes[0]["id"]
    await control.stub.Heartbeat(
        pb.HeartbeatRequest(region="eu", cpu_percent=12.5, viewers=7, streams_carried=1),
        metadata=node_metadata(credential),
    )
    node = (await control.client.get(f"/v1/nodes/{node_id}")).json()
    assert node["cpu_percent"] == 12.5 and node["viewers"] == 7
    drained = await control.client.post(f"/v1/nodes/{node_id}/drain")
    assert drained.json()["status"] == "draining"
    revoked = await control.client.post(f"/v1/nodes/{node_id}/revoke")
    assert revoked.json()["status"] == "revoked"
    duplicate = await control.client.post("/v1/clusters", json={"name": "eu-1", "region": "x"})
    assert duplicate.status_code == 409


async def test_suspension_is_for_platform_operators(control: ControlPlane) -> None:
    tenant = await control.tenant()
    suspended = await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended"


async def test_health_and_metrics(control: ControlPlane) -> None:
    assert (await control.client.get("/healthz")).json() == {"status": "ok"}
    tenant = await control.tenant()
    await control.client.get(f"/v1/tenants/{tenant}/streams")
    metrics = (await control.client.get("/metrics")).text
    assert 'route="/v1/tenants/{tenant_id}/streams"' in metrics
    assert tenant not in metrics
