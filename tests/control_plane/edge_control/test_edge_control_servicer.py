"""EdgeControl over a real gRPC channel to a real grpc.aio server, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb

from tests.control_plane.running import ControlPlane, Node, node_metadata

pytestmark = pytest.mark.asyncio

DEADLINE_S = 5.0


async def publish(control: ControlPlane, node: Node, key: str) -> pb.AuthorizePublishResponse:
    return await control.stub.AuthorizePublish(
        pb.AuthorizePublishRequest(
            stream_key=key, protocol=common_pb2.MEDIA_PROTOCOL_RTMP, client_ip="203.0.113.9"
        ),
        metadata=node.metadata,
        timeout=DEADLINE_S,
    )


async def play(
    control: ControlPlane, node: Node, playback_id: str, token: str | None = None
) -> pb.AuthorizePlayResponse:
    request = pb.AuthorizePlayRequest(playback_id=playback_id, client_ip="203.0.113.9")
    if token is not None:
        request.token = token
    return await control.stub.AuthorizePlay(request, metadata=node.metadata, timeout=DEADLINE_S)


async def heartbeat(
    control: ControlPlane, node: Node, *live: str, **load: Any
) -> pb.HeartbeatResponse:
    return await control.stub.Heartbeat(
        pb.HeartbeatRequest(
            streams=[pb.StreamPresence(stream_id=s, is_origin=True) for s in live], **load
        ),
        metadata=node.metadata,
        timeout=DEADLINE_S,
    )


async def playback_token(
    control: ControlPlane, tenant: str, stream: dict[str, Any], ttl: int
) -> str:
    response = await control.client.post(
        f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens", json={"ttl_seconds": ttl}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# -- enrollment ---------------------------------------------------------------------------


async def test_enrollment_tokens_are_one_shot(control: ControlPlane) -> None:
    cluster = await control.cluster()
    token = await control.enrollment_token(cluster)
    first = await control.stub.EnrollNode(
        pb.EnrollNodeRequest(enrollment_token=token, hostname="edge", region="eu")
    )
    assert first.node_id and first.node_credential.startswith("nc_")
    assert first.cluster_id == cluster
    assert first.heartbeat_interval_seconds == control.settings.heartbeat_interval_s
    again = await rpc_error(control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token)))
    assert again.code() == grpc.StatusCode.UNAUTHENTICATED
    for bogus in ("et_nope", "", "x" * 10_000):
        refused = await rpc_error(
            control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=bogus))
        )
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    nodes = (await control.client.get("/v1/nodes", params={"cluster_id": cluster})).json()
    assert [n["id"] for n in nodes["items"]] == [first.node_id]


async def test_one_enrollment_token_used_at_once_enrolls_one_node(control: ControlPlane) -> None:
    cluster = await control.cluster()
    token = await control.enrollment_token(cluster)
    results = await asyncio.gather(
        *(
            control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token, hostname="e"))
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    enrolled = [r for r in results if isinstance(r, pb.EnrollNodeResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(enrolled) == 1, results
    assert len(refused) == 3 and all(
        r.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ABORTED) for r in refused
    ), [r.code() for r in refused]
    nodes = (await control.client.get("/v1/nodes", params={"cluster_id": cluster})).json()
    assert len(nodes["items"]) == 1


async def test_an_expired_enrollment_token_is_refused(control: ControlPlane) -> None:
    cluster = await control.cluster()
    token = await control.enrollment_token(cluster, ttl_seconds=1)
    await asyncio.sleep(1.1)
    expired = await rpc_error(control.stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token=token)))
    assert expired.code() == grpc.StatusCode.UNAUTHENTICATED


# -- node credentials ---------------------------------------------------------------------


async def test_calls_without_a_valid_credential_are_unauthenticated(
    control: ControlPlane,
) -> None:
    node = await control.enroll()
    request = pb.AuthorizePublishRequest(stream_key="sk_x")
    play_request = pb.AuthorizePlayRequest(playback_id="p")
    for metadata in (
        (),
        node_metadata("nc_wrong"),
        node_metadata(""),
        (("authorization", f"Basic {node.credential}"),),
        (("authorization", node.credential),),
    ):
        for call in (
            control.stub.AuthorizePublish(request, metadata=metadata),
            control.stub.AuthorizePlay(play_request, metadata=metadata),
            control.stub.Heartbeat(pb.HeartbeatRequest(), metadata=metadata),
        ):
            assert (await rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED
    # Warm every cache the credential is answered from, then revoke.
    assert (await publish(control, node, "sk_x")).denial == pb.PUBLISH_DENIAL_REASON_INVALID_KEY
    await heartbeat(control, node)
    assert (await control.client.post(f"/v1/nodes/{node.id}/revoke")).status_code == 200
    for call in (
        control.stub.AuthorizePublish(request, metadata=node.metadata),
        control.stub.AuthorizePlay(play_request, metadata=node.metadata),
        control.stub.Heartbeat(pb.HeartbeatRequest(), metadata=node.metadata),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED


async def test_deleting_a_cluster_ends_its_nodes_credentials(control: ControlPlane) -> None:
    node = await control.enroll()
    stream = await control.stream(await control.tenant())
    assert (await publish(control, node, stream["stream_key"])).allowed  # caches the node
    assert (await control.client.delete(f"/v1/clusters/{node.cluster_id}")).status_code == 204
    for call in (
        control.stub.AuthorizePublish(
            pb.AuthorizePublishRequest(stream_key=stream["stream_key"]), metadata=node.metadata
        ),
        control.stub.Heartbeat(pb.HeartbeatRequest(), metadata=node.metadata),
    ):
        assert (await rpc_error(call)).code() == grpc.StatusCode.UNAUTHENTICATED


# -- heartbeats ---------------------------------------------------------------------------


async def test_heartbeats_update_the_node_and_silence_makes_it_stale(
    control: ControlPlane,
) -> None:
    node = await control.enroll()
    beat = await heartbeat(
        control,
        node,
        cpu_percent=12.5,
        viewers=7,
        streams_carried=1,
        memory_used_bytes=1 << 30,
        memory_total_bytes=4 << 30,
        bandwidth_out_bps=5_000_000,
        region="eu-central",
    )
    assert beat.state == pb.NODE_STATE_ACTIVE
    assert beat.heartbeat_interval_seconds == control.settings.heartbeat_interval_s
    seen = (await control.client.get(f"/v1/nodes/{node.id}")).json()
    assert seen["status"] == "active" and seen["last_heartbeat_at"] is not None
    assert (seen["cpu_percent"], seen["viewers"], seen["streams_carried"]) == (12.5, 7, 1)
    assert (seen["memory_used_bytes"], seen["memory_total_bytes"]) == (1 << 30, 4 << 30)
    assert (seen["bandwidth_out_bps"], seen["region"]) == (5_000_000, "eu-central")

    await asyncio.sleep(control.settings.node_stale_after_s + 0.1)
    stale = (await control.client.get(f"/v1/nodes/{node.id}")).json()
    assert stale["status"] == "stale"
    await heartbeat(control, node)
    assert (await control.client.get(f"/v1/nodes/{node.id}")).json()["status"] == "active"


# -- AuthorizePublish ---------------------------------------------------------------------


async def test_authorize_publish_allows_a_valid_key_with_its_settings(
    control: ControlPlane,
) -> None:
    node = await control.enroll()
    tenant = await control.tenant()
    stream = await control.stream(
        tenant, recording=True, transcode_profile="ladder-720", private_playback=True
    )
    decision = await publish(control, node, stream["stream_key"])
    assert decision.allowed and decision.denial == pb.PUBLISH_DENIAL_REASON_UNSPECIFIED
    assert (decision.stream_id, decision.tenant_id, decision.playback_id) == (
        stream["id"],
        tenant,
        stream["playback_id"],
    )
    assert decision.settings.recording and decision.settings.private_playback
    assert decision.settings.transcode_profile == "ladder-720"
    assert decision.settings.segment_duration_ms == control.settings.segment_duration_ms == 2000
    assert decision.cache_ttl_ms == control.settings.decision_cache_ttl_ms
    live = await control.client.get(f"/v1/tenants/{tenant}/streams/{stream['id']}")
    assert live.json()["live"] is True
    # Settings changed over REST reach the next decision at once.
    await control.client.patch(
        f"/v1/tenants/{tenant}/streams/{stream['id']}", json={"recording": False}
    )
    assert not (await publish(control, node, stream["stream_key"])).settings.recording


async def test_a_rotated_key_dies_at_once(control: ControlPlane) -> None:
    node = await control.enroll()
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    old = stream["stream_key"]
    assert (await publish(control, node, old)).allowed  # now answered from the hot cache
    rotated = await control.client.post(f"/v1/tenants/{tenant}/streams/{stream['id']}/rotate-key")
    new = rotated.json()["stream_key"]
    refused = await publish(control, node, old)
    assert (refused.allowed, refused.denial) == (False, pb.PUBLISH_DENIAL_REASON_INVALID_KEY)
    assert not refused.stream_id and not refused.tenant_id and not refused.playback_id
    allowed = await publish(control, node, new)
    assert allowed.allowed and allowed.stream_id == stream["id"]


async def test_authorize_publish_denials(control: ControlPlane) -> None:
    node = await control.enroll()
    tenant = await control.tenant()
    for key in ("sk_nobody", "", "sk_" + "x" * 600):
        unknown = await publish(control, node, key)
        assert (unknown.allowed, unknown.denial) == (False, pb.PUBLISH_DENIAL_REASON_INVALID_KEY)
        assert not unknown.stream_id and not unknown.tenant_id

    disabled = await control.stream(tenant, enabled=False)
    response = await publish(control, node, disabled["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_STREAM_DISABLED
    assert not response.allowed and not response.playback_id
    await control.client.patch(
        f"/v1/tenants/{tenant}/streams/{disabled['id']}", json={"enabled": True}
    )
    assert (await publish(control, node, disabled["stream_key"])).allowed

    deleted = await control.stream(tenant)
    assert (await publish(control, node, deleted["stream_key"])).allowed
    await control.client.delete(f"/v1/tenants/{tenant}/streams/{deleted['id']}")
    response = await publish(control, node, deleted["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_INVALID_KEY

    fine = await control.stream(tenant)
    assert (await publish(control, node, fine["stream_key"])).allowed
    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    response = await publish(control, node, fine["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_TENANT_SUSPENDED
    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "active"})
    assert (await publish(control, node, fine["stream_key"])).allowed

    await control.client.delete(f"/v1/tenants/{tenant}")
    response = await publish(control, node, fine["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_INVALID_KEY


async def test_a_stream_live_on_one_node_is_refused_on_another(control: ControlPlane) -> None:
    cluster = await control.cluster()
    first, second = await control.enroll(cluster), await control.enroll(cluster)
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    key = stream["stream_key"]
    assert (await publish(control, first, key)).allowed
    # The first node keeps reporting the stream for longer than the stale timeout.
    stale_after = control.settings.node_stale_after_s
    for _ in range(4):
        await heartbeat(control, first, stream["id"])
        elsewhere = await publish(control, second, key)
        assert elsewhere.denial == pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE
        assert elsewhere.stream_id == stream["id"]
        await asyncio.sleep(stale_after / 2)
    again_here = await publish(control, first, key)
    assert again_here.allowed, "the holding node may re-publish (its engine refuses doubles)"
    listed = await control.client.get(f"/v1/tenants/{tenant}/streams/{stream['id']}")
    assert listed.json()["live"] is True
    # The first node goes silent: after the stale timeout the stream may move.
    await asyncio.sleep(stale_after + 0.1)
    assert (await publish(control, second, key)).allowed
    assert (await publish(control, first, key)).denial == pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE


async def test_a_revoked_node_no_longer_holds_its_streams(
    control: ControlPlane,
) -> None:
    cluster = await control.cluster()
    first, second = await control.enroll(cluster), await control.enroll(cluster)
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    await heartbeat(control, first, stream["id"])  # claims the stream by reporting it
    assert (await publish(control, second, stream["stream_key"])).denial == (
        pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE
    )
    assert (await control.client.post(f"/v1/nodes/{first.id}/revoke")).status_code == 200
    assert (await publish(control, second, stream["stream_key"])).allowed


async def test_a_draining_node_takes_no_new_publishes(control: ControlPlane) -> None:
    node = await control.enroll()
    stream = await control.stream(await control.tenant())
    assert (await publish(control, node, stream["stream_key"])).allowed
    await control.client.post(f"/v1/nodes/{node.id}/drain")
    response = await publish(control, node, stream["stream_key"])
    assert response.denial == pb.PUBLISH_DENIAL_REASON_NODE_DRAINING
    assert (await heartbeat(control, node)).state == pb.NODE_STATE_DRAINING
    await control.client.post(f"/v1/nodes/{node.id}/undrain")
    assert (await publish(control, node, stream["stream_key"])).allowed
    assert (await heartbeat(control, node)).state == pb.NODE_STATE_ACTIVE


# -- AuthorizePlay ------------------------------------------------------------------------


async def test_authorize_play_public_private_unknown_and_suspended(
    control: ControlPlane,
) -> None:
    node = await control.enroll()
    tenant = await control.tenant()
    public = await control.stream(tenant)
    private = await control.stream(tenant, private_playback=True)
    allowed = await play(control, node, public["playback_id"])
    assert allowed.allowed and (allowed.stream_id, allowed.tenant_id) == (public["id"], tenant)
    assert allowed.cache_ttl_ms == control.settings.decision_cache_ttl_ms
    for unknown_id in ("nope", "", "p" * 100):
        unknown = await play(control, node, unknown_id)
        assert unknown.denial == pb.PLAY_DENIAL_REASON_UNKNOWN_STREAM and not unknown.stream_id

    bare = await play(control, node, private["playback_id"])
    assert bare.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED and not bare.stream_id
    token = await playback_token(control, tenant, private, ttl=60)
    granted = await play(control, node, private["playback_id"], token)
    assert granted.allowed and granted.stream_id == private["id"]
    other_stream = await playback_token(control, tenant, public, ttl=60)
    for wrong in (other_stream, token + "x", "garbage", ""):
        refused = await play(control, node, private["playback_id"], wrong)
        assert refused.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED, wrong
    short = await playback_token(control, tenant, private, ttl=1)
    await asyncio.sleep(1.05)  # expiry is a whole second at most 1 s after issue
    expired = await play(control, node, private["playback_id"], short)
    assert expired.denial == pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED

    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    for playback_id, with_token in ((public["playback_id"], None), (private["playback_id"], token)):
        suspended = await play(control, node, playback_id, with_token)
        assert suspended.denial == pb.PLAY_DENIAL_REASON_TENANT_SUSPENDED
    # Going private takes effect at once too.
    await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "active"})
    await control.client.patch(
        f"/v1/tenants/{tenant}/streams/{public['id']}", json={"private_playback": True}
    )
    assert (await play(control, node, public["playback_id"])).denial == (
        pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED
    )


# -- metrics ------------------------------------------------------------------------------


async def test_decisions_are_counted_by_outcome_and_reason(control: ControlPlane) -> None:
    node = await control.enroll()
    tenant = await control.tenant()
    stream = await control.stream(tenant, private_playback=True)
    await publish(control, node, stream["stream_key"])
    await publish(control, node, "sk_wrong")
    await publish(control, node, "sk_wrong")
    await play(control, node, stream["playback_id"])
    await play(control, node, "nope")
    metrics = (await control.as_(None).get("/metrics")).text
    for outcome, reason, rpc, count in [
        ("allowed", "", "AuthorizePublish", 1),
        ("denied", "invalid_key", "AuthorizePublish", 2),
        ("denied", "token_required", "AuthorizePlay", 1),
        ("denied", "unknown_stream", "AuthorizePlay", 1),
    ]:
        sample = (
            f'tidecast_control_edge_decisions_total{{outcome="{outcome}",reason="{reason}",'
            f'rpc="{rpc}"}} {count}.0'
        )
        assert sample in metrics, sample
    assert 'tidecast_control_grpc_request_duration_seconds_count{code="OK",rpc="EnrollNode"}' in (
        metrics
    )
