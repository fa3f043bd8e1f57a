"""A node's status as operators and the balancer see it: a pure function of its row."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from control_plane.edges.models import Node, NodeState


class NodeStatus(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"
    STALE = "stale"
    REVOKED = "revoked"


def node_status(node: Node, now: datetime, stale_after_s: float) -> NodeStatus:
    if node.revoked_at is not None:
        return NodeStatus.REVOKED
    last_seen = node.last_heartbeat_at or node.enrolled_at
    if (now - last_seen).total_seconds() >= stale_after_s:
        return NodeStatus.STALE
    if node.state == NodeState.DRAINING:
        return NodeStatus.DRAINING
    return NodeStatus.ACTIVE
