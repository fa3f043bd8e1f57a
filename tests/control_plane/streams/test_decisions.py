"""The pure publish and play decisions (control_plane/streams/decisions.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.streams.decisions import (
    PlayDenial,
    PublishDenial,
    PublishFacts,
    decide_play,
    decide_publish,
    live_elsewhere,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STALE_AFTER_S = 15.0
AGO = {s: NOW - timedelta(seconds=s) for s in (0, 14.9, 15, 16)}


def decide(facts: PublishFacts, *, node: str = "n1", draining: bool = False) -> object:
    return decide_publish(
        facts, node_id=node, node_draining=draining, now=NOW, stale_after_s=STALE_AFTER_S
    )


FOUND = PublishFacts(stream_found=True)


@pytest.mark.parametrize(
    ("facts", "draining", "expected"),
    [
        (FOUND, False, None),
        (PublishFacts(stream_found=False), False, PublishDenial.INVALID_KEY),
        # An unknown key says nothing else, whatever else is set.
        (
            PublishFacts(stream_found=False, enabled=False, tenant_active=False),
            True,
            PublishDenial.INVALID_KEY,
        ),
        (
            PublishFacts(stream_found=True, tenant_active=False),
            False,
            PublishDenial.TENANT_SUSPENDED,
        ),
        (
            PublishFacts(stream_found=True, tenant_active=False, enabled=False),
            True,
            PublishDenial.TENANT_SUSPENDED,
        ),
        (PublishFacts(stream_found=True, enabled=False), True, PublishDenial.STREAM_DISABLED),
        (
            PublishFacts(stream_found=True, quota_exceeded=True),
            True,
            PublishDenial.QUOTA_EXCEEDED,
        ),
        (FOUND, True, PublishDenial.NODE_DRAINING),
        (
            PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=NOW),
            True,
            PublishDenial.NODE_DRAINING,
        ),
        (
            PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=NOW),
            False,
            PublishDenial.ALREADY_LIVE,
        ),
    ],
)
def test_publish_denials_come_in_order(
    facts: PublishFacts, draining: bool, expected: PublishDenial | None
) -> None:
    assert decide(facts, draining=draining) == expected


@pytest.mark.parametrize(
    ("facts", "held_elsewhere"),
    [
        (PublishFacts(stream_found=True), False),
        (PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=AGO[0]), True),
        (
            PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=AGO[14.9]),
            True,
        ),
        # The holder's heartbeat is as old as the stale timeout: it no longer holds.
        (PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=AGO[15]), False),
        (PublishFacts(stream_found=True, live_node_id="n2", live_node_heartbeat_at=AGO[16]), False),
        # A holder that never heartbeated holds from when it was authorized.
        (PublishFacts(stream_found=True, live_node_id="n2", live_since=AGO[0]), True),
        (PublishFacts(stream_found=True, live_node_id="n2", live_since=AGO[16]), False),
        (PublishFacts(stream_found=True, live_node_id="n2"), False),
        # The newest of heartbeat and authorization counts... the heartbeat when there is one.
        (
            PublishFacts(
                stream_found=True,
                live_node_id="n2",
                live_since=AGO[0],
                live_node_heartbeat_at=AGO[16],
            ),
            False,
        ),
        # A revoked holder holds nothing; the asking node itself may always re-publish.
        (
            PublishFacts(
                stream_found=True,
                live_node_id="n2",
                live_node_heartbeat_at=AGO[0],
                live_node_revoked=True,
            ),
            False,
        ),
        (PublishFacts(stream_found=True, live_node_id="n1", live_node_heartbeat_at=AGO[0]), False),
    ],
)
def test_a_stream_is_held_elsewhere_only_by_a_live_other_node(
    facts: PublishFacts, held_elsewhere: bool
) -> None:
    assert live_elsewhere(facts, node_id="n1", now=NOW, stale_after_s=STALE_AFTER_S) is (
        held_elsewhere
    )
    assert (decide(facts) is PublishDenial.ALREADY_LIVE) is held_elsewhere


@given(
    found=st.booleans(),
    enabled=st.booleans(),
    active=st.booleans(),
    quota=st.booleans(),
    draining=st.booleans(),
    holder=st.sampled_from([None, "n1", "n2"]),
    heartbeat_age=st.one_of(st.none(), st.floats(min_value=0, max_value=60)),
    revoked=st.booleans(),
)
def test_a_publish_is_allowed_exactly_when_nothing_stands_against_it(
    found: bool,
    enabled: bool,
    active: bool,
    quota: bool,
    draining: bool,
    holder: str | None,
    heartbeat_age: float | None,
    revoked: bool,
) -> None:
    heartbeat = None if heartbeat_age is None else NOW - timedelta(seconds=heartbeat_age)
    facts = PublishFacts(
        stream_found=found,
        enabled=enabled,
        tenant_active=active,
        quota_exceeded=quota,
        live_node_id=holder,
        live_node_heartbeat_at=heartbeat,
        live_node_revoked=revoked,
    )
    held = holder == "n2" and not revoked and heartbeat_age is not None and heartbeat_age < 15
    allowed = found and enabled and active and not quota and not draining and not held
    assert (decide(facts, draining=draining) is None) is allowed


@pytest.mark.parametrize(
    ("found", "active", "private", "token", "expected"),
    [
        (False, True, False, False, PlayDenial.UNKNOWN_STREAM),
        (False, False, True, True, PlayDenial.UNKNOWN_STREAM),
        (True, False, False, False, PlayDenial.TENANT_SUSPENDED),
        (True, False, True, True, PlayDenial.TENANT_SUSPENDED),
        (True, True, True, False, PlayDenial.TOKEN_REQUIRED),
        (True, True, True, True, None),
        (True, True, False, False, None),
        (True, True, False, True, None),
    ],
)
def test_play_decisions(
    found: bool, active: bool, private: bool, token: bool, expected: PlayDenial | None
) -> None:
    decision = decide_play(
        stream_found=found, tenant_active=active, private_playback=private, token_valid=token
    )
    assert decision == expected


def test_denial_names_are_the_metric_reasons() -> None:
    assert [d.value for d in PublishDenial] == [
        "invalid_key",
        "stream_disabled",
        "tenant_suspended",
        "quota_exceeded",
        "already_live",
        "node_draining",
    ]
    assert [d.value for d in PlayDenial] == ["unknown_stream", "token_required", "tenant_suspended"]
