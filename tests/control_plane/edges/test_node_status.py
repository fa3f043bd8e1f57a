"""A node's status (control_plane/edges/status.py): a pure function of its row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane.edges.models import Node, NodeState
from control_plane.edges.status import NodeStatus, node_status

NOW = datetime(2026, 1, 1, tzinfo=UTC)
STALE_AFTER_S = 15.0


def node(
    *,
    state: NodeState = NodeState.ACTIVE,
    heartbeat_age: float | None = None,
    enrolled_age: float = 0.0,
    revoked: bool = False,
) -> Node:
    return Node(
        id="n",
        cluster_id="c",
        hostname="h",
        region="r",
        credential_hash="x",
        state=state,
        enrolled_at=NOW - timedelta(seconds=enrolled_age),
        last_heartbeat_at=None if heartbeat_age is None else NOW - timedelta(seconds=heartbeat_age),
        revoked_at=NOW if revoked else None,
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (node(heartbeat_age=0), NodeStatus.ACTIVE),
        (node(heartbeat_age=14.99), NodeStatus.ACTIVE),
        (node(heartbeat_age=15), NodeStatus.STALE),
        (node(heartbeat_age=600), NodeStatus.STALE),
        # Before its first heartbeat a node counts from its enrollment.
        (node(enrolled_age=1), NodeStatus.ACTIVE),
        (node(enrolled_age=15), NodeStatus.STALE),
        # A recent heartbeat wins over an old enrollment.
        (node(enrolled_age=3600, heartbeat_age=1), NodeStatus.ACTIVE),
        (node(state=NodeState.DRAINING, heartbeat_age=1), NodeStatus.DRAINING),
        # Silence outranks draining: a stale node is not serving anything.
        (node(state=NodeState.DRAINING, heartbeat_age=20), NodeStatus.STALE),
        # Revocation outranks everything.
        (node(revoked=True, heartbeat_age=0), NodeStatus.REVOKED),
        (node(revoked=True, state=NodeState.DRAINING, heartbeat_age=60), NodeStatus.REVOKED),
    ],
)
def test_node_status(row: Node, expected: NodeStatus) -> None:
    assert node_status(row, NOW, STALE_AFTER_S) is expected
