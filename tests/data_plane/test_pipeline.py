"""Edge spool -> EventIngress -> bus -> ingest -> warehouse -> analytics API, on the
single-node backends (in-process bus, chDB), with a real control plane answering who is
who. Bad input is refused with a clear status and changes nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from data_plane.ingress.validation import Rejection
from data_plane.warehouse.base import Warehouse
from edge_sidecar.ingress_client import IngressClient, frame_request
from edge_sidecar.shipper import EventShipper, ShipperMetrics
from edge_sidecar.spool import EventSpool, RecordClass
from tests.control_plane.running import ControlPlane
from tests.data_plane.conftest import Stack, data_settings, running_stack
from tests.data_plane.factory import event, node_health, now_ms, viewer

pytestmark = pytest.mark.asyncio


async def tenant_with_stream(control: ControlPlane) -> tuple[str, str]:
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    return tenant, str(stream["id"])


def session_events(tenant: str, stream: str, node: str, viewers: int) -> list[ev.Event]:
    common = {"tenant_id": tenant, "stream_id": stream, "node_id": node}
    start = now_ms() - 5_000
    events = [
        event(
            "stream_started",
            session_id="pub-1",
            protocol=common_pb2.MEDIA_PROTOCOL_RTMP,
            media={"video_codec": "h264", "width": 1280, "height": 720, "audio_codec": "aac"},
            at_ms=start,
            **common,
        ),
        event(
            "ingest_health",
            session_id="pub-1",
            bitrate_bps=2_000_000,
            fps=30.0,
            keyframe_interval_s=2.0,
            dropped_frames=1,
            at_ms=start + 1000,
            **common,
        ),
    ]
    for i in range(viewers):
        events.append(
            viewer(
                "viewer_started", f"v{i}", client_ip_hash=f"ip{i % 2}", at_ms=start + 1500, **common
            )
        )
        events.append(
            viewer(
                "viewer_progress",
                f"v{i}",
                bytes_sent=1000,
                watched_ms=2000,
                at_ms=start + 2000,
                **common,
            )
        )
    events.append(
        viewer("viewer_ended", "v0", bytes_sent=500, watched_ms=500, at_ms=start + 3000, **common)
    )
    events.append(node_health(node, cpu_percent=10.0, at_ms=start + 3000))
    return events


async def test_spooled_events_reach_the_warehouse_once_and_the_api_reports_them(
    stack: Stack, tmp_path: Path
) -> None:
    control = stack.control
    tenant, stream = await tenant_with_stream(control)
    node = await control.enroll()
    events = session_events(tenant, stream, node.id, viewers=3)
    spool = EventSpool(tmp_path / "spool")
    for e in events:
        kind = e.WhichOneof("payload")
        spool.append(
            e.SerializeToString(), RecordClass.SAMPLE if "health" in kind else RecordClass.KEEP
        )
    client = IngressClient(stack.ingress_target, timeout_s=5, max_message_bytes=4 << 20)
    client.set_credential(node.credential)
    shipper = EventShipper(spool, client, ShipperMetrics(CollectorRegistry()), batch_events=4)
    try:
        while spool.pending():
            await shipper.ship_once()
        # A sidecar that lost its acknowledgement sends the same events again.
        again = await client.publish([e.SerializeToString() for e in events])
        assert again.accepted == 0 and again.duplicates == len(events)
    finally:
        await client.close()
        spool.close()
    tenant_events = len(events) - 1  # the node health sample belongs to no tenant
    await stack.wait_stored(tenant, tenant_events)

    reader = await control.token(tenant, "read")
    async with stack.as_(reader) as api:
        current = (await api.get(f"/v1/tenants/{tenant}/analytics/viewers/current")).json()
        assert current["total"] == 2 and current["streams"] == {stream: 2}
        # The series trails the stored events by the ingest's count interval (1 s).
        for _ in range(40):
            series = await api.get(
                f"/v1/tenants/{tenant}/analytics/viewers/timeseries", params={"stream_id": stream}
            )
            assert series.status_code == 200, series.text
            if max(series.json()["viewers"]) == 3:
                break
            await asyncio.sleep(0.1)
        assert max(series.json()["viewers"]) == 3
        unique = (await api.get(f"/v1/tenants/{tenant}/analytics/viewers/unique")).json()
        assert unique["unique_viewers"] == 2
        usage = (await api.get(f"/v1/tenants/{tenant}/analytics/usage")).json()["days"]
        assert [(d["stream_id"], d["egress_bytes"]) for d in usage] == [(stream, 3 * 1000 + 500)]
        assert usage[0]["viewer_minutes"] == pytest.approx((3 * 2000 + 500) / 60000, abs=1e-3)
        health = await api.get(
            f"/v1/tenants/{tenant}/analytics/ingest-health", params={"stream_id": stream}
        )
        points = health.json()["points"]
        assert [(p["bitrate_bps"], p["fps"], p["dropped_frames"]) for p in points] == [
            (2_000_000, 30.0, 1)
        ]
        sessions = (await api.get(f"/v1/tenants/{tenant}/analytics/sessions")).json()["sessions"]
        assert [
            (s["session_id"], s["protocol"], s["video_codec"], s["width"]) for s in sessions
        ] == [("pub-1", "rtmp", "h264", 1280)]


@pytest.mark.parametrize("stack", [0, 1], indirect=True, ids=["judged-on-loop", "judged-on-worker"])
async def test_events_for_another_tenant_or_unknown_streams_are_refused_and_not_stored(
    stack: Stack,
) -> None:
    control = stack.control
    tenant_a, stream_a = await tenant_with_stream(control)
    tenant_b, stream_b = await tenant_with_stream(control)
    node = await control.enroll()
    good = viewer("viewer_started", "ok", tenant_id=tenant_a, stream_id=stream_a, node_id=node.id)
    forged = viewer("viewer_started", "x", tenant_id=tenant_a, stream_id=stream_b, node_id=node.id)
    unknown = viewer("viewer_started", "y", tenant_id=tenant_a, stream_id="nope", node_id=node.id)
    other_node = viewer(
        "viewer_started", "z", tenant_id=tenant_a, stream_id=stream_a, node_id="someone-else"
    )
    answer = await stack.publish(node, [good, forged, unknown, other_node])
    assert answer.accepted == 1
    assert [(r.index, r.reason) for r in answer.rejected] == [
        (1, Rejection.FOREIGN_TENANT.value),
        (2, Rejection.UNKNOWN_STREAM.value),
        (3, Rejection.WRONG_NODE.value),
    ]
    # A retry: the accepted event is a duplicate, the others are refused again.
    again = await stack.publish(node, [good, forged, unknown, other_node])
    assert (again.accepted, again.duplicates) == (0, 1)
    assert [r.index for r in again.rejected] == [1, 2, 3]
    # Markers accepted after the refusals, on both streams' partitions: once they are
    # stored, anything the refused events had put on the bus would be stored too.
    markers = [
        viewer("viewer_started", "mark-a", tenant_id=tenant_a, stream_id=stream_a, node_id=node.id),
        viewer("viewer_started", "mark-b", tenant_id=tenant_b, stream_id=stream_b, node_id=node.id),
    ]
    assert (await stack.publish(node, markers)).accepted == 2
    await stack.wait_stored(tenant_a, 2)
    await stack.wait_stored(tenant_b, 1)
    assert await stack.stored_events(tenant_a) == 2
    assert await stack.stored_events(tenant_b) == 1


@pytest.mark.parametrize("stack", [0, 1], indirect=True, ids=["judged-on-loop", "judged-on-worker"])
async def test_malformed_oversized_and_unauthenticated_batches_are_refused(stack: Stack) -> None:
    control = stack.control
    tenant, stream = await tenant_with_stream(control)
    node = await control.enroll()

    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stack.publish(node, [], raw=b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert malformed.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    too_many = [
        viewer("viewer_progress", f"s{i}", tenant_id=tenant, stream_id=stream, node_id=node.id)
        for i in range(stack.settings.ingress_max_batch_events + 1)
    ]
    with pytest.raises(grpc.aio.AioRpcError) as oversized:
        await stack.publish(node, too_many)
    assert oversized.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "exceeds" in (oversized.value.details() or "")

    huge = frame_request([b"\x00" * (1024 * 1024)] * 17)
    with pytest.raises(grpc.aio.AioRpcError) as too_big:
        await stack.publish(node, [], raw=huge)
    assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

    revoked = await control.enroll()
    assert (await control.client.post(f"/v1/nodes/{revoked.id}/revoke")).status_code == 200
    event_of_revoked = viewer(
        "viewer_started", "r", tenant_id=tenant, stream_id=stream, node_id=revoked.id
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.publish(revoked, [event_of_revoked])
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED

    # The service still serves well-behaved nodes, and this event, on the same stream's
    # partition as every refused one, is the only one stored.
    ok = viewer("viewer_started", "fine", tenant_id=tenant, stream_id=stream, node_id=node.id)
    assert (await stack.publish(node, [ok])).accepted == 1
    await stack.wait_stored(tenant, 1)
    assert await stack.stored_events(tenant) == 1


async def test_undecodable_messages_go_to_the_dead_letter_topic_and_the_rest_is_stored(
    stack: Stack,
) -> None:
    from data_plane.bus.base import ConsumerOptions, OutgoingMessage
    from data_plane.ingress.batching import to_messages

    control = stack.control
    tenant, stream = await tenant_with_stream(control)
    good = [viewer("viewer_started", f"v{i}", tenant_id=tenant, stream_id=stream) for i in range(3)]
    dead_reader = await stack.plane.bus.consumer(
        [stack.settings.dead_letter_topic], ConsumerOptions(group_id=None)
    )
    try:
        producer = stack.plane.bus.producer()
        await producer.send_batch(
            stack.settings.events_topic,
            [
                OutgoingMessage(
                    key=stream.encode(),
                    value=b"\xff not protobuf",
                    headers=(("tenant_id", tenant.encode()),),
                ),
                *to_messages(good),
            ],
        )
        await stack.wait_stored(tenant, 3)
        dead = await dead_reader.fetch(timeout_ms=5000)
        assert [m.value for m in dead] == [b"\xff not protobuf"]
        assert (dead[0].header("error") or b"").startswith(b"not an EventBatch")
        assert dead[0].header("tenant_id") == tenant.encode()
    finally:
        await dead_reader.close()


def _running(pid: int) -> bool:
    """Whether the process is on a CPU now (state R in /proc): a decoding worker is
    running only while it decodes (or pickles what it decoded); idle, it sleeps on its
    call queue."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "R"


def _kill_while_running(pid: int, timeout_s: float) -> bool:
    """SIGKILLs `pid` the moment it is seen running; False if it never was within
    `timeout_s` (then it is left alive)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.0002)
    return False


async def _stored_counts(warehouse: Warehouse, tenant: str) -> tuple[int, int, int]:
    """(raw rows, distinct event ids, rollup byte sum) of `tenant`."""
    raw = await warehouse.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE tenant_id = {t:String}",
        {"t": tenant},
    )
    rollup = await warehouse.query(
        "SELECT sum(bytes) FROM viewers_by_stream_minute WHERE tenant_id = {t:String}",
        {"t": tenant},
    )
    rows, distinct = raw.rows[0]
    return int(rows), int(distinct), int(rollup.scalar() or 0)


async def test_a_decoding_worker_killed_while_decoding_loses_and_doubles_nothing(
    control: ControlPlane, chdb_warehouse: Warehouse
) -> None:
    settings = data_settings(control, ingest_decode_workers=1, ingest_decode_in_engine=False)
    tenant, stream = await tenant_with_stream(control)
    node = await control.enroll()
    sent = 0

    def batch(round_: int) -> list[ev.Event]:
        return [
            viewer(
                "viewer_progress",
                f"r{round_}-{i}",
                tenant_id=tenant,
                stream_id=stream,
                node_id=node.id,
                bytes_sent=1,
                watched_ms=1,
            )
            for i in range(1000)
        ]

    async with running_stack(control, settings, chdb_warehouse) as stack:
        consumer = stack.plane.consumer
        assert consumer is not None
        await consumer.ready.wait()
        [victim] = consumer.writer.worker_pids()
        # The kill waits on a thread for the worker to be decoding while batches keep
        # arriving, so it lands mid-decode rather than between publishes.
        kill = asyncio.create_task(asyncio.to_thread(_kill_while_running, victim, 30.0))
        round_ = 0
        while not kill.done() or round_ < 4:
            events = batch(round_)
            assert (await stack.publish(node, events)).accepted == len(events)
            sent += len(events)
            round_ += 1
        assert await kill, "the decoding worker was never seen decoding"
        # A marker published after everything else: the consumer writes fetches in
        # order and retries a failed write before the next, so once the marker is
        # stored, every write of the batches before it (and any doubling) has landed.
        marker = batch(round_)[:1]
        assert (await stack.publish(node, marker)).accepted == 1
        sent += 1
        await stack.wait_stored(tenant, sent, timeout_s=60)
        # Raw rows (no FINAL: the table collapses duplicates when it merges), distinct
        # ids and the rollup's byte sum (a doubled insert doubles it) all equal `sent`.
        # A write's rollup rows land just after its events, so the sum is waited for.
        counts = await _stored_counts(chdb_warehouse, tenant)
        deadline = asyncio.get_running_loop().time() + 30
        while counts[2] < sent and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            counts = await _stored_counts(chdb_warehouse, tenant)
        assert counts == (sent, sent, sent)
        # The write that lost its worker failed and was retried on a new one.
        failures = stack.plane.registry.get_sample_value("tidecast_ingest_write_failures_total")
        assert (failures or 0) >= 1
        assert consumer.writer.worker_pids() not in ([], [victim])


@pytest.mark.parametrize("in_engine", [True, False], ids=["engine-decodes", "python-decodes"])
async def test_under_load_what_arrives_within_the_write_interval_is_written_together(
    control: ControlPlane, chdb_warehouse: Warehouse, in_engine: bool
) -> None:
    interval_ms = 3000
    settings = data_settings(
        control, ingest_min_write_interval_ms=interval_ms, ingest_decode_in_engine=in_engine
    )
    tenant, stream = await tenant_with_stream(control)
    node = await control.enroll()

    def one(session: str) -> list[ev.Event]:
        return [
            viewer("viewer_started", session, tenant_id=tenant, stream_id=stream, node_id=node.id)
        ]

    loop = asyncio.get_running_loop()
    async with running_stack(control, settings, chdb_warehouse) as stack:
        # An idle ingest writes at once: the bound is the interval itself, since waiting
        # for it is the failure this tells apart (not a speed; that is the benchmarks').
        sent_first = loop.time()
        assert (await stack.publish(node, one("first"))).accepted == 1
        await stack.wait_stored(tenant, 1)
        assert loop.time() - sent_first < interval_ms / 1000
        # Five batches over half a second, within the interval after that write.
        for i in range(5):
            assert (await stack.publish(node, one(f"burst{i}"))).accepted == 1
            await asyncio.sleep(0.1)
        await stack.wait_stored(tenant, 6)
        written = await chdb_warehouse.query(
            "SELECT session_id, toUnixTimestamp64Milli(ingested_at) FROM events"
            " WHERE tenant_id = {t:String}",
            {"t": tenant},
        )
        at = {str(session): int(str(ms)) for session, ms in written.rows}
        burst = {ms for session, ms in at.items() if session.startswith("burst")}
        assert len(burst) == 1, f"the burst took {len(burst)} writes"
        # It waited for the interval after the first fetch, less the first write's time.
        assert burst.pop() - at["first"] >= interval_ms - 1000
