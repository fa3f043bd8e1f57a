"""EdgeControl over a real gRPC channel, on both backends."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb

from tests.control_plane.conftest import ControlPlane, node_metadata

pytestmark = pytest.mark.asyncio


async def publish(control: ControlPlane, credential: str, key: str) -> pb.AuthorizePublishResponse:
    return await control.stub.AuthorizePublish(
        pb.AuthorizePublishRequest(
            stream_key=key, protocol=common_pb2.MEDIA_PROTOCOL_RTMP, client_ip="203.0.113.9"
        ),
        metadata=node_metadata(credential),
    )


async def play(
    control: ControlPlane, credential: str, playback_id: str, token: str | None = None
) -> pb.AuthorizePlayResponse:
    request = pb.AuthorizePlayRequest(playback_id=playback_id, client_ip="203.0.113.9")
    if token is not None:
        request.token = token
    return await control.stub.AuthorizePlay(request, metadata=node_metadata(credential))


async def test_enrollment_tokens_are_one_shot(control: ControlPlane) -> None:
    cluster = await control.client.post("/v1/clusters", json={"name": "c", "region": "r"})
    token = (
        await control.client.post(
            f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 60}
        )
    ).json()["token"]
    first = await control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token))
    assert first.node_id and first.node_credential.startswith("nc_")
    assert first.cluster_id == cluster.json()["id"]
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token))
    assert again.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as bogus:
        await control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token="et_nope"))
    assert bogus.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_enrollment_token_is_refused(control: ControlPlane) -> None:
    cluster = await control.client.post("/v1/clusters", json={"name": "c", "region": "r"})
    token = (
        await control.client.post(
            f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 1}
        )
    ).json()["token"]
    await asyncio.sleep(1.2)
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token))
    assert expired.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_calls_without_a_valid_credential_are_unauthenticated(
    control: ControlPlane,
) -> None:
    credential = await control.enroll()
    request = pb.AuthorizePublishRequest(stream_key="sk_x")
    for metadata in ((), node_metadata("nc_wrong"), (("authorization", "Basic x"),)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await control.stub.AuthorizePublish(request, metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    node_id = (await control.client.get("/v1/nodes")).json()["items"][0]["id"]
    await control.client.post(f"/v1/nodes/{node_id}/revoke")
    for call in (
        control.stub.AuthorizePublish(request, metadata=node_metadata(credential)),
        control.stub.Heartbeat(pb.HeartbeatRequest(), metadata=node_metadata(credential)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await call
        assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_authorize_publish_allows_a_valid_key_with_its_settings(
    control: ControlPlane,
) -> None:
    credential = await control.enroll()
    tenant = await control.tenant()
    stream = await control.stream(tenant, recording=True, transcode_profile="ladder-720")
    decision = await publish(control, credential, stream["stream_key"])
    assert decision.allowed
    assert (decision.stream_id, decision.tenant_id, decision.playback_id) == (
        stream["id"],
        tenant,
        stream["playback_id"],
    )
    assert decision.settings.recording and decision.settings.transcode_profile == "ladder-720"
    assert decision.settings.segment_duration_ms == 2000
    assert decision.cache_ttl_ms > 0


async def test_authorize_publish_denials(control: ControlPlane) -> None:
    credential = await control.enroll()
    tenant = await control.tenant()
    unknown = await publish(control, credential, "sk_nobody")
    assert (unknown.allowed, unknown.denial) == (False, pb.PUBLISH_DENIAL_REASON_INVALID_KEY)
    assert not unknown.stream_id and not unknown.tenant_id

    disabled = await control.stream(tenant, enabled=False)
    response = await publish(control, credential, disabled["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_STREAM_DISABLED

    rotated = await control.stream(tenant)
    await control.client.post(f"/v1/tenants/{tenant}/streams/{rotated['id']}/rotate-key")
    response = await publish(control, credential, rotated["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_INVALID_KEY

    deleted = await control.stream(tenant)
    assert (await publish(control, credential, deleted["stream_key"])).allowed
    await control.client.delete(f"/v1/tenants/{tenant}/streams/{deleted['id']}")
    response = await publish(control, credential, deleted["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_INVALID_KEY

    fine = await control.stream(tenant)
    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    response = await publish(control, credential, fine["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_TENANT_SUSPENDED


async def test_a_stream_live_on_one_node_is_refused_on_another(control: ControlPlane) -> None:
    first, second = await control.enroll(), await control.enroll()
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    assert (await publish(control, first, stream["stream_key"])).allowed
    await control.stub.Heartbeat(
        pb.HeartbeatRequest(streams=[pb.StreamPresence(stream_id=stream["id"], is_origin=True)]),
        metadata=node_metadata(first),
    )
    elsewhere = await publish(control, second, stream["stream_key"])
    assert elsewhere.denial == pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE
    again_here = await publish(control, first, stream["stream_key"])
    assert again_here.allowed, "the holding node may re-publish (its engine refuses doubles)"
    listed = await control.client.get(f"/v1/tenants/{tenant}/streams/{stream['id']}")
    assert listed.json()["live"] is True
    # The first node goes silent: after the stale timeout the stream may move.
    await asyncio.sleep(control.settings.node_stale_after_s + 0.2)
    control.database.hot_cache.clear()  # as another replica with an expired cache would
    moved = await publish(control, second, stream["stream_key"])
    assert moved.allowed


async def test_a_draining_node_takes_no_new_publishes(control: ControlPlane) -> None:
    credential = await control.enroll()
    node_id = (await control.client.get("/v1/nodes")).json()["items"][0]["id"]
    await control.client.post(f"/v1/nodes/{node_id}/drain")
    stream = await control.stream(await control.tenant())
    response = await publish(control, credential, stream["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_NODE_DRAINING
    beat = await control.stub.Heartbeat(pb.HeartbeatRequest(), metadata=node_metadata(credential))
    assert beat.state == pb.NODE_STATE_DRAINING


async def test_authorize_play_public_private_unknown_and_suspended(
    control: ControlPlane,
) -> None:
    credential = await control.enroll()
    tenant = await control.tenant()
    public = await control.stream(tenant)
    private = await control.stream(tenant, private_playback=True)
    assert (await play(control, credential, public["playback_id"])).allowed
    unknown = await play(control, credential, "nope")
    assert unknown.denial == pb.PLAY_DENIAL_REASON_UNKNOWN_STREAM
    bare = await play(control, credential, private["playback_id"])
    assert bare.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED
    token = (
        await control.client.post(
            f"/v1/tenants/{tenant}/streams/{private['id']}/playback-tokens",
            json={"ttl_seconds": 60},
        )
    ).json()["token"]
    assert (await play(control, credential, private["playback_id"], token)).allowed
    other = (
        await control.client.post(
            f"/v1/tenants/{tenant}/streams/{public['id']}/playback-tokens", json={"ttl_seconds": 60}
        )
    ).json()["token"]
    wrong_stream = await play(control, credential, private["playback_id"], other)
    assert wrong_stream.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED
    short = (
        await control.client.post(
            f"/v1/tenants/{tenant}/streams/{private['id']}/playback-tokens", json={"ttl_seconds": 1}
        )
    ).json()["token"]
    await asyncio.sleep(2.1)
    expired = await play(control, credential, private["playback_id"], short)
    assert expired.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED
    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    suspended = await play(control, credential, public["playback_id"])
    assert suspended.denial == pb.PLAY_DENIAL_REASON_TENANT_SUSPENDED


async def test_heartbeats_keep_a_node_active_and_silence_makes_it_stale(
    control: ControlPlane,
) -> None:
    credential = await control.enroll()
    beat = await control.stub.Heartbeat(
        pb.HeartbeatRequest(cpu_percent=3.0), metadata=node_metadata(credential)
    )
    assert beat.state == pb.NODE_STATE_ACTIVE and beat.heartbeat_interval_seconds > 0
    node = (await control.client.get("/v1/nodes")).json()["items"][0]
    assert node["status"] == "active"
    await asyncio.sleep(control.settings.node_stale_after_s + 0.2)
    node = (await control.client.get("/v1/nodes")).json()["items"][0]
    assert node["status"] == "stale"


async def test_decisions_are_counted_by_outcome_and_reason(control: ControlPlane) -> None:
    credential = await control.enroll()
    stream = await control.stream(await control.tenant())
    await publish(control, credential, stream["stream_key"])
    await publish(control, credential, "sk_wrong")
    metrics = (await control.client.get("/metrics")).text
    assert (
        'tidecast_control_edge_decisions_total{outcome="allowed",reason="",'
        'rpc="AuthorizePublish"} 1.0'
    ) in metrics
    assert (
        'tidecast_control_edge_decisions_total{outcome="denied",reason="invalid_key",'
        'rpc="AuthorizePublish"} 1.0'
    ) in metrics


async def test_secrets_never_reach_logs_or_listings(
    control: ControlPlane,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cluster = await control.client.post("/v1/clusters", json={"name": "c", "region": "r"})
    enrollment = (
        await control.client.post(
            f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 60}
        )
    ).json()["token"]
    node = await control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=enrollment))
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    rotated = (
        await control.client.post(f"/v1/tenants/{tenant}/streams/{stream['id']}/rotate-key")
    ).json()["stream_key"]
    api_token = await control.token(tenant, "read")
    await control.as_(api_token).get(f"/v1/tenants/{tenant}/streams")
    await publish(control, node.node_credential, rotated)
    await publish(control, node.node_credential, stream["stream_key"])
    listings = "".join(
        [
            (await control.client.get(f"/v1/tenants/{tenant}/streams")).text,
            (await control.client.get(f"/v1/tenants/{tenant}/tokens")).text,
            (await control.client.get("/v1/nodes")).text,
        ]
    )
    secrets = [
        enrollment,
        node.node_credential,
        stream["stream_key"],
        rotated,
        api_token,
        api_token.split(".")[1],
        control.admin_token,
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in logged
        assert secret not in listings
