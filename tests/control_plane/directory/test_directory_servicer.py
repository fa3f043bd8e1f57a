"""The Directory service the data plane asks about callers, nodes and stream owners, over a
real gRPC channel, on both database backends."""

from __future__ import annotations

import grpc
import pytest
from tidecast.directory.v1 import directory_pb2 as pb
from tidecast.directory.v1 import directory_pb2_grpc

from tests.control_plane.running import ControlPlane

pytestmark = pytest.mark.asyncio


def stub(control: ControlPlane) -> directory_pb2_grpc.DirectoryAsyncStub:
    return directory_pb2_grpc.DirectoryStub(control.channel)


def as_platform(control: ControlPlane) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {control.admin_token}"),)


async def code_of(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value.code()


async def test_only_platform_credentials_may_ask(control: ControlPlane) -> None:
    tenant = await control.tenant()
    tenant_token = await control.token(tenant, "read", "write", "admin")
    request = pb.ResolveStreamsRequest(stream_ids=["x"])
    assert await code_of(stub(control).ResolveStreams(request)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await code_of(
            stub(control).ResolveStreams(
                request, metadata=(("authorization", f"Bearer {tenant_token}"),)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    node = await control.enroll()
    assert (
        await code_of(stub(control).ResolveStreams(request, metadata=node.metadata))
        == grpc.StatusCode.UNAUTHENTICATED
    )


async def test_authenticate_reports_the_grants_of_tokens_and_users(control: ControlPlane) -> None:
    acme = await control.tenant("acme")
    globex = await control.tenant("globex")
    read_token = await control.token(acme, "read")
    answer = await stub(control).Authenticate(
        pb.AuthenticateRequest(bearer=read_token), metadata=as_platform(control)
    )
    assert not answer.platform_admin
    assert [(g.tenant_id, list(g.scopes)) for g in answer.grants] == [(acme, ["read"])]
    assert answer.cache_ttl_s >= 1

    await control.member(acme, "viewer@example.com", "viewer")
    await control.member(globex, "viewer@example.com", "admin")
    access = (await control.login("viewer@example.com"))["access_token"]
    answer = await stub(control).Authenticate(
        pb.AuthenticateRequest(bearer=access), metadata=as_platform(control)
    )
    grants = {g.tenant_id: sorted(g.scopes) for g in answer.grants}
    assert grants == {acme: ["read"], globex: ["admin", "read", "write"]}

    platform = await stub(control).Authenticate(
        pb.AuthenticateRequest(bearer=control.admin_token), metadata=as_platform(control)
    )
    assert platform.platform_admin and not platform.grants


async def test_authenticate_refuses_wrong_and_revoked_credentials(control: ControlPlane) -> None:
    tenant = await control.tenant()
    response = await control.client.post(
        f"/v1/tenants/{tenant}/tokens", json={"name": "t", "scopes": ["read"]}
    )
    token, token_id = response.json()["token"], response.json()["id"]
    for bearer in ("", "tc_nope.nope", "not-a-jwt", "x" * 5000):
        assert (
            await code_of(
                stub(control).Authenticate(
                    pb.AuthenticateRequest(bearer=bearer), metadata=as_platform(control)
                )
            )
            == grpc.StatusCode.UNAUTHENTICATED
        ), bearer[:20]
    revoked = await control.client.delete(f"/v1/tenants/{tenant}/tokens/{token_id}")
    assert revoked.status_code in (200, 204), revoked.text
    assert (
        await code_of(
            stub(control).Authenticate(
                pb.AuthenticateRequest(bearer=token), metadata=as_platform(control)
            )
        )
        == grpc.StatusCode.UNAUTHENTICATED
    )


async def test_verify_node_knows_live_nodes_and_refuses_revoked_ones(
    control: ControlPlane,
) -> None:
    node = await control.enroll()
    answer = await stub(control).VerifyNode(
        pb.VerifyNodeRequest(node_credential=node.credential), metadata=as_platform(control)
    )
    assert (answer.node_id, answer.cluster_id, answer.region) == (node.id, node.cluster_id, "eu")
    revoked = await control.client.post(f"/v1/nodes/{node.id}/revoke")
    assert revoked.status_code == 200, revoked.text
    for credential in (node.credential, "nc_unknown", ""):
        assert (
            await code_of(
                stub(control).VerifyNode(
                    pb.VerifyNodeRequest(node_credential=credential),
                    metadata=as_platform(control),
                )
            )
            == grpc.StatusCode.UNAUTHENTICATED
        )


async def test_resolve_streams_names_owners_and_leaves_out_unknown_ids(
    control: ControlPlane,
) -> None:
    acme = await control.tenant("acme")
    globex = await control.tenant("globex")
    a = await control.stream(acme)
    g = await control.stream(globex)
    answer = await stub(control).ResolveStreams(
        pb.ResolveStreamsRequest(stream_ids=[a["id"], g["id"], "missing", a["id"]]),
        metadata=as_platform(control),
    )
    owners = {s.stream_id: (s.tenant_id, s.playback_id) for s in answer.streams}
    assert owners == {a["id"]: (acme, a["playback_id"]), g["id"]: (globex, g["playback_id"])}
    too_many = pb.ResolveStreamsRequest(stream_ids=[f"s{i}" for i in range(1001)])
    assert (
        await code_of(stub(control).ResolveStreams(too_many, metadata=as_platform(control)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
