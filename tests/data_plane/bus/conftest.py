"""The ``bus`` fixture: every contract test runs on the in-process bus and on Kafka (the
session's tansu broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from data_plane.bus.base import ConsumerOptions, EventBus
from data_plane.bus.kafka import KafkaBus
from data_plane.bus.memory import InProcessBus
from tests.data_plane.bus.backends import BACKENDS, FAST_GROUP, MakeOptions, unique


@pytest_asyncio.fixture(params=BACKENDS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """A started bus of each kind, closed after the test."""
    backend: EventBus
    if request.param == "memory":
        backend = InProcessBus()
    else:
        backend = KafkaBus(request.getfixturevalue("kafka_bootstrap"), send_timeout_ms=10_000)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def options(bus: EventBus) -> MakeOptions:
    """Consumer options with the backend's test tuning."""
    extra = FAST_GROUP if isinstance(bus, KafkaBus) else {}

    def make(
        group_id: str | None, *, start: str = "earliest", max_records: int = 2000
    ) -> ConsumerOptions:
        return ConsumerOptions(
            group_id=group_id, start=start, max_records=max_records, extra=dict(extra)
        )

    return make


@pytest.fixture
def topic() -> str:
    return unique("topic")


@pytest.fixture
def group() -> str:
    return unique("group")
