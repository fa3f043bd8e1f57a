"""Closing a Kafka bus whose broker is gone."""

from __future__ import annotations

import asyncio
import time

import pytest

from data_plane.bus.base import BusError, OutgoingMessage
from data_plane.bus.kafka import KafkaBus
from tests.harness.kafka import TansuBroker


@pytest.mark.asyncio
async def test_closing_with_sends_on_their_way_to_a_dead_broker_is_bounded(
    private_tansu: TansuBroker,
) -> None:
    bus = KafkaBus(private_tansu.bootstrap, send_timeout_ms=30_000, close_timeout_ms=1_000)
    await bus.start()
    await bus.ensure_topic("events", 3)
    producer = bus.producer()
    messages = [OutgoingMessage(key=f"k{i}".encode(), value=b"x" * 1000) for i in range(30)]
    await producer.send_batch("events", messages)
    private_tansu.kill()
    sends = [asyncio.create_task(producer.send_batch("events", messages)) for _ in range(4)]
    await asyncio.sleep(0.5)

    started = time.monotonic()
    await bus.close()

    # Without the bound: the 30 s request timeout of each batch on its way.
    assert time.monotonic() - started < 10
    outcomes = await asyncio.gather(*sends, return_exceptions=True)
    assert all(isinstance(o, BusError) for o in outcomes), outcomes


@pytest.mark.asyncio
async def test_the_aiokafka_internals_a_bounded_close_ends_are_where_it_expects() -> None:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]

    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")
    try:
        assert callable(producer.client.close)
        assert callable(producer._sender.close)
        assert callable(producer._message_accumulator.fail_all)
    finally:
        await producer.stop()
