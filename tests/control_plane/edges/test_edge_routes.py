"""Edge registry routes on both backends: clusters, enrollment tokens, nodes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tidecast.edge.v1 import edge_control_pb2 as pb

from tests.control_plane.running import PASSWORD, ControlPlane, unique, walk

pytestmark = pytest.mark.asyncio


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
