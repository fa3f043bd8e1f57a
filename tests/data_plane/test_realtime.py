"""The realtime WebSocket: a tenant's subscribers get its lifecycle and viewer-count
updates, in order, and nothing of other tenants."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from tidecast.events.v1 import events_pb2 as ev
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from data_plane.bus.base import TENANT_HEADER, OutgoingMessage
from data_plane.bus.kafka import KafkaBus
from data_plane.realtime.hub import RealtimeHub
from tests.data_plane.conftest import Stack
from tests.data_plane.factory import event, viewer

pytestmark = pytest.mark.asyncio


def ws_url(stack: Stack, tenant: str, token: str) -> str:
    return (
        f"ws://127.0.0.1:{stack.plane.api_port}/v1/tenants/{tenant}/realtime?access_token={token}"
    )


#: Only to stop waiting on a broken build: how soon updates arrive is the benchmarks' job.
RECEIVE_DEADLINE_S = 15.0


async def receive(ws: ClientConnection, timeout_s: float = RECEIVE_DEADLINE_S) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
    return message


async def stops_reading(hub: RealtimeHub, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while hub.reading:
        assert time.monotonic() < deadline, "the hub kept reading with nobody watching"
        await asyncio.sleep(0.05)


async def test_updates_arrive_in_order_and_only_for_the_own_tenant(stack: Stack) -> None:
    control = stack.control
    acme = await control.tenant("acme")
    globex = await control.tenant("globex")
    stream = (await control.stream(acme))["id"]
    globex_stream = (await control.stream(globex))["id"]
    acme_token = await control.token(acme, "read")
    globex_token = await control.token(globex, "read")
    node = await control.enroll()
    async with (
        connect(ws_url(stack, acme, acme_token)) as acme_ws,
        connect(ws_url(stack, globex, globex_token)) as globex_ws,
    ):
        assert (await receive(acme_ws))["type"] == "snapshot"
        assert (await receive(globex_ws)) == {"type": "snapshot", "streams": {}}
        ids = {"tenant_id": acme, "stream_id": stream, "node_id": node.id}
        answer = await stack.publish(
            node,
            [
                event("stream_started", session_id="p", media={"video_codec": "h264"}, **ids),
                viewer("viewer_started", "v1", **ids),
                viewer("viewer_started", "v2", **ids),
            ],
        )
        assert answer.accepted == 3
        started = await receive(acme_ws)
        assert started["type"] == "stream_started" and started["stream_id"] == stream
        count = await receive(acme_ws)
        assert count == {"type": "viewer_count", "stream_id": stream, "viewers": 2}
        # The hub has dispatched acme's events (acme got them), so any copy sent to globex
        # is queued ahead of globex's own event published now: globex's next message
        # must be that event.
        marker = event(
            "stream_started",
            session_id="g",
            media={"video_codec": "h264"},
            tenant_id=globex,
            stream_id=globex_stream,
            node_id=node.id,
        )
        assert (await stack.publish(node, [marker])).accepted == 1
        first = await receive(globex_ws)
        assert (first["type"], first["stream_id"]) == ("stream_started", globex_stream)

        # A reconnecting client resumes from a fresh snapshot.
        async with connect(ws_url(stack, acme, acme_token)) as again:
            snapshot = await receive(again)
            assert snapshot["streams"][stream] == {"live": True, "viewers": 2}


async def test_bad_credentials_and_invisible_tenants_are_closed(stack: Stack) -> None:
    control = stack.control
    acme = await control.tenant("acme")
    globex_token = await control.token(await control.tenant("globex"), "read")
    for token, code in (("tc_forged.x", 4401), (globex_token, 4404)):
        async with connect(ws_url(stack, acme, token)) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_a_subscriber_that_falls_behind_is_dropped_not_buffered(stack: Stack) -> None:
    hub = RealtimeHub(stack.plane.bus, stack.settings.events_topic, queue_size=3, idle_timeout_s=60)
    try:
        slow = await hub.subscribe("tenant-a", None)
        fast = await hub.subscribe("tenant-a", None)
        for i in range(3):
            hub.publish([viewer("viewer_started", f"v{i}")], now_ms=0)
            if i < 2:
                fast.queue.get_nowait()
        assert slow.dropped.is_set() and not fast.dropped.is_set()
        assert hub.subscribers == 1 and hub.dropped_slow == 1
    finally:
        await hub.stop()


async def test_a_first_subscriber_gets_what_happened_before_it_connected(stack: Stack) -> None:
    control = stack.control
    acme = await control.tenant("acme")
    stream = (await control.stream(acme))["id"]
    token = await control.token(acme, "read")
    node = await control.enroll()
    ids = {"tenant_id": acme, "stream_id": stream, "node_id": node.id}
    await stack.publish(
        node,
        [
            event("stream_started", session_id="p", **ids),
            viewer("viewer_started", "v1", **ids),
            viewer("viewer_started", "v2", **ids),
            viewer("viewer_ended", "v2", **ids),
        ],
    )
    await stack.wait_stored(acme, 4)
    async with connect(ws_url(stack, acme, token)) as ws:
        snapshot = await receive(ws)
        assert snapshot == {"type": "snapshot", "streams": {stream: {"live": True, "viewers": 1}}}
        await stack.publish(node, [viewer("viewer_ended", "v1", **ids)])
        assert await receive(ws) == {"type": "viewer_count", "stream_id": stream, "viewers": 0}


async def test_the_hub_reads_the_bus_only_while_someone_watches(stack: Stack) -> None:
    control = stack.control
    acme = await control.tenant("acme")
    stream = (await control.stream(acme))["id"]
    node = await control.enroll()
    ids = {"tenant_id": acme, "stream_id": stream, "node_id": node.id}
    hub = RealtimeHub(
        stack.plane.bus,
        stack.settings.events_topic,
        queue_size=10,
        idle_timeout_s=60,
        read_after_last_s=0.2,
    )
    await hub.start()
    try:
        assert not hub.reading, "nobody watches yet"
        for viewer_id in ("v1", "v2"):  # the second time after the hub stopped reading
            watcher = await hub.subscribe(acme, None)
            assert hub.reading
            assert (await watcher.queue.get())["type"] == "snapshot"
            await stack.publish(node, [viewer("viewer_started", viewer_id, **ids)])
            update = await asyncio.wait_for(watcher.queue.get(), 2.0)
            assert update["type"] == "viewer_count" and update["stream_id"] == stream
            hub.unsubscribe(watcher)
            await stops_reading(hub, within_s=5)
    finally:
        await hub.stop()


async def test_on_kafka_a_first_subscriber_starts_the_reading_before_it_is_answered(
    kafka_bootstrap: str,
) -> None:
    topic = f"realtime-{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(kafka_bootstrap, send_timeout_ms=10_000)
    await bus.start()
    await bus.ensure_topic(topic, 3)
    hub = RealtimeHub(bus, topic, queue_size=10, idle_timeout_s=60, read_after_last_s=0.2)
    try:
        assert not hub.reading
        watcher = await hub.subscribe("tenant-a", None)
        assert hub.reading
        assert (await watcher.queue.get())["type"] == "snapshot"
        # Produced right after the subscribe returned: the reader is at the end already.
        batch = ev.EventBatch(events=[viewer("viewer_started", "v1")])
        await bus.producer().send_batch(
            topic,
            [
                OutgoingMessage(
                    key=b"stream-1",
                    value=batch.SerializeToString(),
                    headers=((TENANT_HEADER, b"tenant-a"),),
                )
            ],
        )
        update = await asyncio.wait_for(watcher.queue.get(), 5.0)
        assert update == {"type": "viewer_count", "stream_id": "stream-1", "viewers": 1}
        hub.unsubscribe(watcher)
        await stops_reading(hub, within_s=10)
    finally:
        await hub.stop()
        await bus.close()


async def test_every_documented_message_flows_before_and_after_subscribe(stack: Stack) -> None:
    """The module's protocol, message by message: snapshot, stream_started, viewer_count,
    stream_ended; subscribe to a list (a filtered snapshot, then only those streams),
    subscribe to null (everything again), a malformed message (an error, the feed goes on)."""
    control = stack.control
    acme = await control.tenant("acme")
    one = (await control.stream(acme))["id"]
    two = (await control.stream(acme))["id"]
    token = await control.token(acme, "read")
    node = await control.enroll()
    first = {"tenant_id": acme, "stream_id": one, "node_id": node.id}
    second = {"tenant_id": acme, "stream_id": two, "node_id": node.id}
    async with connect(ws_url(stack, acme, token)) as ws:
        assert await receive(ws) == {"type": "snapshot", "streams": {}}
        await stack.publish(node, [event("stream_started", session_id="p1", **first)])
        started = await receive(ws, timeout_s=5)
        assert (started["type"], started["stream_id"]) == ("stream_started", one)

        await ws.send(json.dumps({"type": "subscribe", "stream_ids": [two]}))
        assert await receive(ws, timeout_s=5) == {"type": "snapshot", "streams": {}}
        await stack.publish(
            node,
            [
                viewer("viewer_started", "v1", **first),  # not subscribed: not sent
                event("stream_started", session_id="p2", **second),
                viewer("viewer_started", "v2", **second),
            ],
        )
        started = await receive(ws, timeout_s=5)
        assert (started["type"], started["stream_id"]) == ("stream_started", two)
        assert await receive(ws, timeout_s=5) == {
            "type": "viewer_count",
            "stream_id": two,
            "viewers": 1,
        }

        await ws.send(json.dumps({"type": "subscribe", "stream_ids": None}))
        snapshot = await receive(ws, timeout_s=5)
        assert snapshot == {
            "type": "snapshot",
            "streams": {one: {"live": True, "viewers": 1}, two: {"live": True, "viewers": 1}},
        }
        await stack.publish(node, [event("stream_ended", session_id="p1", **first)])
        ended = await receive(ws, timeout_s=5)
        assert (ended["type"], ended["stream_id"]) == ("stream_ended", one)

        for malformed in (
            "not json",
            '{"type": "hello"}',
            '{"type": "subscribe", "stream_ids": 7}',
        ):
            await ws.send(malformed)
            error = await receive(ws, timeout_s=5)
            assert error["type"] == "error" and error["message"], malformed
        await stack.publish(node, [viewer("viewer_started", "v3", **second)])
        assert await receive(ws, timeout_s=5) == {
            "type": "viewer_count",
            "stream_id": two,
            "viewers": 2,
        }
