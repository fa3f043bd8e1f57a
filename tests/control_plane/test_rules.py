"""The pure rules: publish/play decisions, scopes and roles, signed tokens, node status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.auth.principal import Principal, PrincipalKind, Role, Scope
from control_plane.auth.tokens import (
    decode_access_token,
    encode_access_token,
    encode_playback_token,
    format_api_token,
    parse_api_token,
    playback_token_grants,
)
from control_plane.edges.models import Node, NodeState
from control_plane.edges.status import NodeStatus, node_status
from control_plane.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from control_plane.streams.decisions import (
    PlayDenial,
    PublishDenial,
    PublishFacts,
    decide_play,
    decide_publish,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def decide(facts: PublishFacts, *, node: str = "n1", draining: bool = False) -> object:
    return decide_publish(facts, node_id=node, node_draining=draining, now=NOW, stale_after_s=15)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (PublishFacts(stream_found=False), PublishDenial.INVALID_KEY),
        (
            PublishFacts(stream_found=True, tenant_active=False, enabled=False),
            PublishDenial.TENANT_SUSPENDED,
        ),
        (PublishFacts(stream_found=True, enabled=False), PublishDenial.STREAM_DISABLED),
        (PublishFacts(stream_found=True, quota_exceeded=True), PublishDenial.QUOTA_EXCEEDED),
        (
            PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=NOW),
            PublishDenial.ALREADY_LIVE,
        ),
        (
            PublishFacts(
                stream_found=True,
                live_node_id="n2",
                live_node_heartbeat_at=NOW - timedelta(seconds=16),
            ),
            None,
        ),
        (
            PublishFacts(
                stream_found=True,
                live_node_id="n2",
                live_node_heartbeat_at=NOW,
                live_node_revoked=True,
            ),
            None,
        ),
        (PublishFacts(stream_found=True, live_node_id="n1", live_node_heartbeat_at=NOW), None),
        (PublishFacts(stream_found=True), None),
    ],
)
def test_publish_decisions(facts: PublishFacts, expected: PublishDenial | None) -> None:
    assert decide(facts) == expected


def test_a_draining_node_refuses_new_publishes() -> None:
    assert decide(PublishFacts(stream_found=True), draining=True) == PublishDenial.NODE_DRAINING


@pytest.mark.parametrize(
    ("found", "active", "private", "token", "expected"),
    [
        (False, True, False, False, PlayDenial.UNKNOWN_STREAM),
        (True, False, False, False, PlayDenial.TENANT_SUSPENDED),
        (True, True, True, False, PlayDenial.TOKEN_REQUIRED),
        (True, True, True, True, None),
        (True, True, False, False, None),
    ],
)
def test_play_decisions(
    found: bool, active: bool, private: bool, token: bool, expected: PlayDenial | None
) -> None:
    assert (
        decide_play(
            stream_found=found, tenant_active=active, private_playback=private, token_valid=token
        )
        == expected
    )


def test_tenant_tokens_see_only_their_tenant_and_scopes() -> None:
    token = Principal(
        PrincipalKind.API_TOKEN, "t", token_tenant_id="a", token_scopes=frozenset({Scope.READ})
    )
    token.require("a", Scope.READ)
    with pytest.raises(PermissionDeniedError):
        token.require("a", Scope.WRITE)
    with pytest.raises(NotFoundError):
        token.require("b", Scope.READ)
    with pytest.raises(PermissionDeniedError):
        token.require_platform_admin()
    assert token.visible_tenant_ids() == ["a"]


def test_roles_map_to_scopes_and_owners_are_special() -> None:
    user = Principal(
        PrincipalKind.USER, "u", roles={"a": Role.VIEWER, "b": Role.ADMIN, "c": Role.OWNER}
    )
    user.require("a", Scope.READ)
    with pytest.raises(PermissionDeniedError):
        user.require("a", Scope.WRITE)
    user.require("b", Scope.ADMIN)
    with pytest.raises(PermissionDeniedError):
        user.require_owner("b")
    user.require_owner("c")
    platform = Principal(PrincipalKind.API_TOKEN, "p", platform_admin=True)
    platform.require("anything", Scope.ADMIN)
    assert platform.visible_tenant_ids() is None


def test_access_tokens_round_trip_and_expire() -> None:
    token = encode_access_token("user-1", "s" * 40, ttl_s=60, now=1_000_000)
    with pytest.raises(AuthenticationError, match="expired"):
        decode_access_token(token, "s" * 40)
    fresh = encode_access_token("user-1", "s" * 40, ttl_s=60)
    assert decode_access_token(fresh, "s" * 40) == "user-1"
    with pytest.raises(AuthenticationError):
        decode_access_token(fresh, "other" * 10)
    playback, _ = encode_playback_token("pb", "s" * 40, ttl_s=60)
    with pytest.raises(AuthenticationError):
        decode_access_token(playback, "s" * 40)  # a playback token is no API credential


def test_playback_tokens_grant_only_their_stream() -> None:
    token, _ = encode_playback_token("pb1", "s" * 40, ttl_s=60)
    assert playback_token_grants(token, "pb1", "s" * 40)
    assert not playback_token_grants(token, "pb2", "s" * 40)
    assert not playback_token_grants(token, "pb1", "t" * 40)
    assert not playback_token_grants("garbage", "pb1", "s" * 40)
    access = encode_access_token("pb1", "s" * 40, ttl_s=60)
    assert not playback_token_grants(access, "pb1", "s" * 40)


def test_api_token_format_round_trips_and_rejects_junk() -> None:
    token_id = "01a20460-f248-72c3-af90-de833ce52429"
    parts = parse_api_token(format_api_token(token_id, "secret"))
    assert parts is not None and (parts.token_id, parts.secret) == (token_id, "secret")
    for junk in (
        "tc_",
        "tc_abc.def",
        "tc_" + "g" * 32 + ".x",
        "xx" + "0" * 32 + ".x",
        "tc_" + "0" * 32 + ".",
    ):
        assert parse_api_token(junk) is None


def test_node_status() -> None:
    node = Node(
        id="n",
        cluster_id="c",
        hostname="h",
        region="r",
        credential_hash="x",
        state=NodeState.ACTIVE,
        enrolled_at=NOW,
        last_heartbeat_at=NOW,
    )
    assert node_status(node, NOW + timedelta(seconds=5), 15) is NodeStatus.ACTIVE
    assert node_status(node, NOW + timedelta(seconds=15), 15) is NodeStatus.STALE
    node.state = NodeState.DRAINING
    assert node_status(node, NOW, 15) is NodeStatus.DRAINING
    node.revoked_at = NOW
    assert node_status(node, NOW, 15) is NodeStatus.REVOKED
