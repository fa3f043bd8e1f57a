"""What the bus tests share: the backends, their tuning, unique names."""

from __future__ import annotations

import uuid
from typing import Protocol

import pytest

from data_plane.bus.base import ConsumerOptions

BACKENDS = ["memory", pytest.param("kafka", marks=pytest.mark.kafka)]

# tansu delays a group's (re)balance in proportion to these; with Kafka's defaults (10 s
# session) every join takes 5 s or more, and a member that left is only forgotten after
# several seconds. The heartbeat still leaves ten beats of margin per session.
FAST_GROUP: dict[str, object] = {
    "session_timeout_ms": 2000,
    "heartbeat_interval_ms": 200,
    "rebalance_timeout_ms": 1000,
}


class MakeOptions(Protocol):
    def __call__(
        self, group_id: str | None, *, start: str = "earliest", max_records: int = 2000
    ) -> ConsumerOptions: ...


def unique(prefix: str) -> str:
    """A name of one test alone, so tests sharing the broker never meet."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
