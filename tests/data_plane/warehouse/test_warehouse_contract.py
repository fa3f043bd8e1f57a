"""One contract for both warehouse adapters: chDB in this process, and clickhouse-connect
over HTTP (to the harness's stand-in in front of chDB, and to a real ClickHouse server when
TIDECAST_CLICKHOUSE_URL names one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from data_plane.warehouse.base import Warehouse, WarehouseError
from data_plane.warehouse.clickhouse_warehouse import ClickHouseWarehouse
from data_plane.warehouse.event_sink import EventSink
from data_plane.warehouse.schema import migrate, migrations
from tests.data_plane.factory import event, node_health, now_ms, viewer

pytestmark = pytest.mark.asyncio

ADAPTERS = ["chdb", "clickhouse-http"] + (
    ["clickhouse-server"] if os.environ.get("TIDECAST_CLICKHOUSE_URL") else []
)


@pytest_asyncio.fixture(params=ADAPTERS)
async def warehouse(request: pytest.FixtureRequest) -> AsyncIterator[Warehouse]:
    if request.param == "chdb":
        shared: Warehouse = request.getfixturevalue("chdb_warehouse")
        yield shared
        return
    url = (
        os.environ["TIDECAST_CLICKHOUSE_URL"]
        if request.param == "clickhouse-server"
        else request.getfixturevalue("clickhouse_http_url")
    )
    remote = ClickHouseWarehouse(url)
    await migrate(remote, raw_retention_days=30)
    try:
        yield remote
    finally:
        await remote.close()


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_migrations_are_recorded_and_rerunning_them_changes_nothing(
    warehouse: Warehouse,
) -> None:
    assert await migrate(warehouse, raw_retention_days=30) == []
    versions = await warehouse.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
    assert [row[0] for row in versions.rows] == [m.version for m in migrations(30)]
    ddl = await warehouse.query("SHOW CREATE TABLE events")
    assert "TTL" in str(ddl.scalar()) and "ReplacingMergeTree" in str(ddl.scalar())


async def test_parameters_are_data_never_sql(warehouse: Warehouse) -> None:
    hostile = "x' OR 1=1 --"
    echoed = await warehouse.query(
        "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, length({a:Array(String)}) AS a",
        {"s": hostile, "n": 41, "a": [hostile, "b"]},
    )
    assert echoed.rows == [(hostile, 42, 2)]
    assert echoed.columns == ("s", "n", "a")
    none = await warehouse.query(
        "SELECT count() FROM events WHERE tenant_id = {t:String}", {"t": hostile}
    )
    assert none.scalar() == 0


async def test_errors_surface_as_warehouse_errors(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError):
        await warehouse.query("SELEC nonsense")
    with pytest.raises(WarehouseError):
        await warehouse.execute("DROP TABLE no_such_table_here")
    assert (await warehouse.query("SELECT 1")).scalar() == 1  # still serving


async def test_every_kind_round_trips_with_its_values(warehouse: Warehouse) -> None:
    owner = tenant()
    ids = {"tenant_id": owner, "stream_id": "s1"}
    at = now_ms()
    events = [
        event(
            "stream_started",
            session_id="p",
            protocol=common_pb2.MEDIA_PROTOCOL_RTMP,
            media={
                "video_codec": "h264",
                "width": 1280,
                "height": 720,
                "audio_codec": "aac",
                "audio_sample_rate": 48000,
                "audio_channels": 2,
            },
            at_ms=at,
            **ids,
        ),
        event(
            "stream_ended",
            session_id="p",
            reason=ev.END_REASON_PUBLISHER_LOST,
            duration_ms=9000,
            bytes_in=123,
            at_ms=at,
            **ids,
        ),
        event(
            "ingest_health",
            session_id="p",
            bitrate_bps=2_500_000,
            fps=29.97,
            keyframe_interval_s=2.0,
            dropped_frames=3,
            at_ms=at,
            **ids,
        ),
        viewer("viewer_started", "v", client_ip_hash="h", user_agent="ua", at_ms=at, **ids),
        viewer("viewer_progress", "v", bytes_sent=10, watched_ms=1000, at_ms=at, **ids),
        viewer(
            "viewer_ended", "v", bytes_sent=5, watched_ms=500, duration_ms=1500, at_ms=at, **ids
        ),
        node_health(cpu_percent=50.0, memory_used_bytes=1 << 30, streams=2, viewers=3, at_ms=at),
        event(
            "balancer_decision",
            playback_id="pb",
            chosen_node_id="n2",
            score=0.5,
            candidates=4,
            requires_pull=True,
            at_ms=at,
            **ids,
        ),
    ]
    events[6].tenant_id = owner  # so this test can find it
    assert (await EventSink(warehouse).write(events)).inserted == len(events)
    result = await warehouse.query(
        """
        SELECT kind, session_id, protocol, video_codec, width, height, audio_codec,
               audio_sample_rate, audio_channels, end_reason, duration_ms, bytes,
               bitrate_bps, toDecimal32(fps, 2), dropped_frames, client_ip_hash, user_agent,
               watched_ms, cpu_percent, node_streams, node_viewers, playback_id,
               chosen_node_id, candidates, requires_pull, toUnixTimestamp64Milli(occurred_at)
        FROM events WHERE tenant_id = {t:String} ORDER BY kind
        """,
        {"t": owner},
    )
    rows = {row[0]: row for row in result.rows}
    assert rows["stream_started"][1:9] == ("p", "rtmp", "h264", 1280, 720, "aac", 48000, 2)
    assert rows["stream_ended"][9:12] == ("publisher_lost", 9000, 123)
    bitrate, fps, dropped = rows["ingest_health"][12:15]
    assert (bitrate, float(fps), dropped) == (2_500_000, 29.97, 3)
    assert rows["viewer_started"][15:17] == ("h", "ua")
    assert rows["viewer_progress"][11] == 10 and rows["viewer_progress"][17] == 1000
    assert rows["viewer_ended"][10:12] == (1500, 5)
    assert rows["node_health"][18:21] == (50.0, 2, 3)
    assert rows["balancer_decision"][21:25] == ("pb", "n2", 4, 1)
    assert {row[-1] for row in result.rows} == {at}


async def test_the_sink_stores_each_event_once_and_rollups_count_it_once(
    warehouse: Warehouse,
) -> None:
    owner = tenant()
    ids = {"tenant_id": owner, "stream_id": "s1"}
    sink = EventSink(warehouse)
    batch = [
        viewer("viewer_progress", f"v{i % 3}", bytes_sent=100, watched_ms=1000, **ids)
        for i in range(9)
    ]
    health = [
        event("ingest_health", session_id="p", bitrate_bps=b, fps=30.0, **ids) for b in (1000, 3000)
    ]
    first = await sink.write(batch + batch[:2] + health)
    assert (first.inserted, first.duplicates) == (11, 2)
    again = await sink.write(batch + health + [viewer("viewer_ended", "v0", bytes_sent=1, **ids)])
    assert (again.inserted, again.duplicates) == (1, 11)

    raw = await warehouse.query(
        "SELECT count(), uniqExact(event_id) FROM events WHERE tenant_id = {t:String}",
        {"t": owner},
    )
    assert raw.rows == [(12, 12)]
    viewers = await warehouse.query(
        """SELECT sum(bytes), sum(watched_ms), uniqExactMerge(sessions)
           FROM viewers_by_stream_minute WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert viewers.rows == [(901, 9000, 3)]
    per_tenant = await warehouse.query(
        """SELECT sum(bytes), uniqExactMerge(sessions)
           FROM viewers_by_tenant_minute WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert per_tenant.rows == [(901, 3)]
    usage = await warehouse.query(
        "SELECT sum(bytes) FROM usage_by_tenant_hour WHERE tenant_id = {t:String}", {"t": owner}
    )
    assert usage.scalar() == 901
    ingest = await warehouse.query(
        """SELECT avgMerge(bitrate_bps), sum(samples)
           FROM ingest_health_by_stream_minute WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert ingest.rows == [(2000.0, 2)]


async def test_large_batches_are_deduplicated_too(warehouse: Warehouse) -> None:
    owner = tenant()
    batch = [
        viewer("viewer_progress", f"v{i % 50}", bytes_sent=1, tenant_id=owner) for i in range(5000)
    ]
    sink = EventSink(warehouse)
    assert (await sink.write(batch)).inserted == 5000
    assert (await sink.write(batch[::-1])).duplicates == 5000
    total = await warehouse.query(
        "SELECT sum(bytes) FROM viewers_by_stream_minute WHERE tenant_id = {t:String}",
        {"t": owner},
    )
    assert total.scalar() == 5000


async def test_finished_minutes_hold_the_viewer_counts_the_series_reads(
    warehouse: Warehouse,
) -> None:
    from data_plane.analytics.queries import AnalyticsQueries
    from data_plane.analytics.time_range import TimeRange
    from data_plane.warehouse.viewer_counts import ViewerCounts

    owner = tenant()
    minute = (now_ms() - 10 * 60_000) // 60_000 * 60_000
    ids = {"tenant_id": owner, "stream_id": "s1"}
    sink = EventSink(warehouse, ViewerCounts(warehouse))
    await sink.write(
        [viewer("viewer_progress", s, at_ms=minute + 1000, **ids) for s in "abc"]
        + [viewer("viewer_progress", "a", at_ms=minute + 61_000, **ids)]
        + [viewer("viewer_progress", "z", at_ms=minute + 2000, tenant_id=owner, stream_id="s2")]
    )
    await sink.finish_minutes()
    counts = await warehouse.query(
        """SELECT stream_id, toUnixTimestamp(minute) * 1000, max(viewers)
           FROM viewer_counts_by_stream_minute WHERE tenant_id = {t:String}
           GROUP BY stream_id, minute ORDER BY stream_id, minute""",
        {"t": owner},
    )
    assert counts.rows == [("s1", minute, 3), ("s1", minute + 60_000, 1), ("s2", minute, 1)]
    # A late event for a finished minute is counted again when the sink next finishes.
    await sink.write([viewer("viewer_progress", "d", at_ms=minute + 5000, **ids)])
    await sink.finish_minutes()
    window = TimeRange.from_ms(minute - 60_000, minute + 3 * 60_000)
    queries = AnalyticsQueries(warehouse)
    assert await queries.viewer_series(owner, window, "s1") == [0, 4, 1, 0]
    assert await queries.viewer_series(owner, window) == [0, 5, 1, 0]
