"""One contract for both warehouse adapters: chDB in this process, and clickhouse-connect
over HTTP (to the harness's stand-in in front of chDB, and to a real ClickHouse server when
TIDECAST_CLICKHOUSE_URL names one).

chDB lets a process open one data directory, so the in-process adapter is the session's
shared warehouse (`chdb_warehouse`, migrated once); tests stay independent by writing
under tenant ids of their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
import pytest_asyncio
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from data_plane.warehouse.base import Warehouse, WarehouseError
from data_plane.warehouse.chdb_warehouse import ChdbWarehouse
from data_plane.warehouse.clickhouse_warehouse import ClickHouseWarehouse
from data_plane.warehouse.event_rows import events_to_arrow
from data_plane.warehouse.event_sink import EventSink, SinkResult
from data_plane.warehouse.schema import (
    DEDUP_WINDOW_DAYS,
    ROLLUP_RETENTION_DAYS,
    Migration,
    migrate,
    migrations,
)
from tests.data_plane.factory import event, node_health, now_ms, viewer

pytestmark = pytest.mark.asyncio

RETENTION_DAYS = 30  # what the session's chDB warehouse was migrated with
ADAPTERS = ["chdb", "clickhouse-http"] + (
    ["clickhouse-server"] if os.environ.get("TIDECAST_CLICKHOUSE_URL") else []
)
HOSTILE = "x' OR 1=1 --"


def _url(request: pytest.FixtureRequest) -> str:
    if request.param == "clickhouse-server":
        return os.environ["TIDECAST_CLICKHOUSE_URL"]
    url: str = request.getfixturevalue("clickhouse_http_url")
    return url


def _with_database(url: str, database: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=f"/{database}").geturl()


@pytest_asyncio.fixture(params=ADAPTERS)
async def warehouse(request: pytest.FixtureRequest) -> AsyncIterator[Warehouse]:
    if request.param == "chdb":
        shared: Warehouse = request.getfixturevalue("chdb_warehouse")
        yield shared
        return
    remote = ClickHouseWarehouse(_url(request))
    await migrate(remote, raw_retention_days=RETENTION_DAYS)
    try:
        yield remote
    finally:
        await remote.close()


@pytest_asyncio.fixture(params=ADAPTERS)
async def empty_warehouse(request: pytest.FixtureRequest) -> AsyncIterator[Warehouse]:
    """A warehouse on a database of its own that holds nothing yet."""
    database = f"fresh_{uuid.uuid4().hex[:10]}"
    if request.param == "chdb":
        # The engine of this process, its sessions in the new database.
        shared: ChdbWarehouse = request.getfixturevalue("chdb_warehouse")
        await shared.execute(f"CREATE DATABASE {database}")
        fresh_chdb = ChdbWarehouse(shared.path, database=database)
        try:
            yield fresh_chdb
        finally:
            await fresh_chdb.close()
            await shared.execute(f"DROP DATABASE {database}")
        return
    url = _url(request)
    admin = ClickHouseWarehouse(url)
    await admin.execute(f"CREATE DATABASE {database}")
    fresh = ClickHouseWarehouse(_with_database(url, database))
    try:
        yield fresh
    finally:
        await fresh.close()
        await admin.execute(f"DROP DATABASE {database}")
        await admin.close()


def ttl_days(ddl: str) -> int | None:
    """The days of a table's `TTL <time> + INTERVAL n DAY`, as SHOW CREATE prints it."""
    found = re.search(r"\bTTL .*?(?:INTERVAL (\d+) DAY|toIntervalDay\((\d+)\))", ddl)
    return int(found.group(1) or found.group(2)) if found else None


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


# --- schema -------------------------------------------------------------------------------


async def test_migrate_builds_an_empty_store_and_a_second_run_changes_nothing(
    empty_warehouse: Warehouse,
) -> None:
    versions = [m.version for m in migrations(7)]
    assert await migrate(empty_warehouse, raw_retention_days=7) == versions
    assert await migrate(empty_warehouse, raw_retention_days=7) == []
    recorded = await empty_warehouse.query(
        "SELECT version, description FROM schema_migrations FINAL ORDER BY version"
    )
    assert recorded.rows == [(m.version, m.description) for m in migrations(7)]
    tables = await empty_warehouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    names = {row[0] for row in tables.rows}
    assert {
        "events",
        "event_ids_by_hour",
        "event_ids_by_hour_mv",
        "viewers_by_stream_minute",
        "viewers_by_stream_minute_mv",
        "viewers_by_tenant_minute",
        "viewers_by_tenant_minute_mv",
        "ingest_health_by_stream_minute",
        "ingest_health_by_stream_minute_mv",
        "usage_by_tenant_hour",
        "usage_by_tenant_hour_mv",
        "schema_migrations",
    } <= names
    # The retention given to migrate is the one the raw table got.
    ddl = await empty_warehouse.query("SHOW CREATE TABLE events")
    assert ttl_days(str(ddl.scalar())) == 7


async def test_migrations_are_recorded_and_rerunning_them_changes_nothing(
    warehouse: Warehouse,
) -> None:
    assert await migrate(warehouse, raw_retention_days=RETENTION_DAYS) == []
    versions = await warehouse.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
    assert [row[0] for row in versions.rows] == [m.version for m in migrations(RETENTION_DAYS)]


@pytest.mark.parametrize(
    ("table", "engine", "days"),
    [
        ("events", "ReplacingMergeTree", RETENTION_DAYS),
        ("event_ids_by_hour", "ReplacingMergeTree", DEDUP_WINDOW_DAYS),
        ("viewers_by_stream_minute", "AggregatingMergeTree", ROLLUP_RETENTION_DAYS),
        ("viewers_by_tenant_minute", "AggregatingMergeTree", ROLLUP_RETENTION_DAYS),
        ("ingest_health_by_stream_minute", "AggregatingMergeTree", ROLLUP_RETENTION_DAYS),
        ("usage_by_tenant_hour", "AggregatingMergeTree", ROLLUP_RETENTION_DAYS),
    ],
)
async def test_every_table_has_its_engine_and_ttl(
    warehouse: Warehouse, table: str, engine: str, days: int
) -> None:
    ddl = str((await warehouse.query(f"SHOW CREATE TABLE {table}")).scalar())
    assert f"ENGINE = {engine}" in ddl
    assert ttl_days(ddl) == days, ddl


# --- parameters, values, errors --------------------------------------------------------------


async def test_parameters_are_data_never_sql(warehouse: Warehouse) -> None:
    echoed = await warehouse.query(
        "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, length({a:Array(String)}) AS a",
        {"s": HOSTILE, "n": 41, "a": [HOSTILE, "b"]},
    )
    assert echoed.rows == [(HOSTILE, 42, 2)]
    assert echoed.columns == ("s", "n", "a")
    none = await warehouse.query(
        "SELECT count() FROM events WHERE tenant_id = {t:String}", {"t": HOSTILE}
    )
    assert none.scalar() == 0


@pytest.mark.parametrize(
    "text",
    [HOSTILE, "back\\slash", "a\\nb", "tab\there", "new\nline", "\\N", "`tick`", "ünï €", ""],
)
async def test_strings_bind_unchanged(warehouse: Warehouse, text: str) -> None:
    result = await warehouse.query(
        "SELECT {s:String}, {a:Array(String)}, length({s:String})", {"s": text, "a": [text, text]}
    )
    assert result.rows == [(text, [text, text], len(text.encode()))]


async def test_other_parameter_types_bind(warehouse: Warehouse) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    at = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    result = await warehouse.query(
        """
        SELECT {ids:Array(UUID)}, {strs:Array(UUID)}, {nums:Array(Int64)}, {empty:Array(String)},
               {u:UUID}, toUnixTimestamp64Milli({at:DateTime64(3, 'UTC')}), {none:Nullable(String)},
               {f:Float64}, {b:Bool}
        """,
        {
            "ids": ids,
            "strs": [str(i) for i in ids],
            "nums": [-1, 0, 2**62],
            "empty": [],
            "u": ids[0],
            "at": at,
            "none": None,
            "f": 0.25,
            "b": True,
        },
    )
    assert result.rows == [(ids, ids, [-1, 0, 2**62], [], ids[0], 1714979289123, None, 0.25, True)]


async def test_sql_without_placeholders_is_never_formatted_on_the_client(
    warehouse: Warehouse,
) -> None:
    result = await warehouse.query("SELECT 'a%b' LIKE '%b'", {"unused": 1})
    assert result.scalar() == 1


async def test_values_come_back_as_python_values(warehouse: Warehouse) -> None:
    result = await warehouse.query(
        """
        SELECT toUUID('6080b51a-fbd3-489a-8d1e-d2054f2551dd') AS id,
               toDateTime64('2024-01-02 03:04:05.678', 3, 'UTC') AS at,
               toDateTime('2024-01-02 03:04:05', 'UTC') AS at_s,
               toDate('2024-01-02') AS day,
               toDecimal64(12.34, 2) AS amount,
               toUInt64(18446744073709551615) AS big,
               toFloat32(1.5) AS f,
               toLowCardinality('lc') AS lc,
               [1, 2] AS arr,
               CAST(NULL, 'Nullable(String)') AS missing
        """
    )
    assert result.dicts() == [
        {
            "id": uuid.UUID("6080b51a-fbd3-489a-8d1e-d2054f2551dd"),
            "at": datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
            "at_s": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "day": date(2024, 1, 2),
            "amount": Decimal("12.34"),
            "big": 18446744073709551615,
            "f": 1.5,
            "lc": "lc",
            "arr": [1, 2],
            "missing": None,
        }
    ]
    assert result.dicts()[0]["at"].utcoffset().total_seconds() == 0


async def test_chdb_answers_a_query_while_a_write_runs(chdb_warehouse: ChdbWarehouse) -> None:
    """The analytics API's queries must not queue behind the ingest's writes."""
    write = asyncio.create_task(chdb_warehouse.execute("SELECT sleep(2)"))
    await asyncio.sleep(0.2)

    result = await chdb_warehouse.query("SELECT 1")

    assert result.rows == [(1,)]
    assert not write.done(), "the query waited for the write"
    await write


async def test_errors_surface_as_warehouse_errors_with_the_engine_message(
    warehouse: Warehouse,
) -> None:
    with pytest.raises(WarehouseError, match=r"Code: 62\..*Syntax error"):
        await warehouse.query("SELECT FROM WHERE")
    with pytest.raises(WarehouseError, match="UNKNOWN_TABLE"):
        await warehouse.execute("DROP TABLE no_such_table_here")
    with pytest.raises(WarehouseError, match="boom"):
        await warehouse.query("SELECT throwIf(number = 1, 'boom') FROM numbers(3)")
    with pytest.raises(WarehouseError):
        await warehouse.insert_arrow("no_such_table_here", pa.table({"a": [1]}))
    assert (await warehouse.query("SELECT 1")).scalar() == 1  # still serving


async def test_insert_arrow_writes_one_block(warehouse: Warehouse) -> None:
    table = f"scratch_{uuid.uuid4().hex[:10]}"
    await warehouse.execute(
        f"CREATE TABLE {table} (id UUID, at DateTime64(3, 'UTC'), n UInt32, s String) "
        "ENGINE = MergeTree ORDER BY id"
    )
    try:
        ids = [str(uuid.uuid4()) for _ in range(1000)]
        await warehouse.insert_arrow(
            table,
            pa.table(
                {
                    "id": pa.array(ids, pa.string()),
                    "at": pa.array([1_700_000_000_123] * 1000, pa.timestamp("ms", tz="UTC")),
                    "n": pa.array(range(1000), pa.uint32()),
                    "s": pa.array([HOSTILE] * 1000, pa.string()),
                }
            ),
        )
        result = await warehouse.query(
            f"SELECT count(), uniqExact(id), sum(n), any(s), min(at) FROM {table}"  # noqa: S608
        )
        assert result.rows == [
            (1000, 1000, 499500, HOSTILE, datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC))
        ]
        stored = await warehouse.query(
            f"SELECT id FROM {table} WHERE id = {{id:UUID}}",  # noqa: S608
            {"id": ids[7]},
        )
        assert stored.rows == [(uuid.UUID(ids[7]),)]
    finally:
        await warehouse.execute(f"DROP TABLE {table}")


# --- events, the sink and the rollups --------------------------------------------------------


async def test_every_kind_round_trips_with_its_values(warehouse: Warehouse) -> None:
    owner = tenant()
    ids = {"tenant_id": owner, "stream_id": "s1"}
    at = now_ms()
    events = [
        event(
            "stream_started",
            session_id="p",
            protocol=common_pb2.MEDIA_PROTOCOL_RTMP,
            client_ip_hash="ip",
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
            protocol=common_pb2.MEDIA_PROTOCOL_SRT,
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
        viewer(
            "viewer_progress",
            "v",
            protocol=common_pb2.MEDIA_PROTOCOL_LL_HLS,
            bytes_sent=10,
            watched_ms=1000,
            at_ms=at,
            **ids,
        ),
        viewer(
            "viewer_ended",
            "v",
            protocol=common_pb2.MEDIA_PROTOCOL_WHEP,
            bytes_sent=5,
            watched_ms=500,
            duration_ms=1500,
            at_ms=at,
            **ids,
        ),
        node_health(
            cpu_percent=50.0,
            memory_used_bytes=1 << 30,
            bandwidth_in_bps=7,
            bandwidth_out_bps=8,
            streams=2,
            viewers=3,
            at_ms=at,
        ),
        event(
            "balancer_decision",
            playback_id="pb",
            chosen_node_id="n2",
            score=0.5,
            candidates=4,
            client_ip_hash="ip2",
            distance_km=12.5,
            requires_pull=True,
            at_ms=at,
            **ids,
        ),
    ]
    events[6].tenant_id = owner  # so this test can find it
    assert (await EventSink(warehouse).write(events)).inserted == len(events)
    result = await warehouse.query(
        """
        SELECT * EXCEPT ingested_at, ingested_at > now64(3) - INTERVAL 10 MINUTE AS fresh
        FROM events WHERE tenant_id = {t:String} ORDER BY kind
        """,
        {"t": owner},
    )
    rows = {row["kind"]: row for row in result.dicts()}
    assert set(rows) == {e.WhichOneof("payload") for e in events}
    for source in events:
        row = rows[str(source.WhichOneof("payload"))]
        assert row["event_id"] == uuid.UUID(source.event_id)
        assert row["occurred_at"] == datetime.fromtimestamp(at / 1000, UTC)
        assert row["node_id"] == "node-1" and row["fresh"] == 1

    def fields(kind: str, *names: str) -> tuple[object, ...]:
        return tuple(rows[kind][name] for name in names)

    assert fields(
        "stream_started",
        "session_id",
        "protocol",
        "client_ip_hash",
        "video_codec",
        "width",
        "height",
        "audio_codec",
        "audio_sample_rate",
        "audio_channels",
    ) == ("p", "rtmp", "ip", "h264", 1280, 720, "aac", 48000, 2)
    assert fields("stream_ended", "protocol", "end_reason", "duration_ms", "bytes") == (
        "srt",
        "publisher_lost",
        9000,
        123,
    )
    bitrate, fps, keyframes, dropped = fields(
        "ingest_health", "bitrate_bps", "fps", "keyframe_interval_s", "dropped_frames"
    )
    assert (bitrate, round(float(str(fps)), 2), keyframes, dropped) == (2_500_000, 29.97, 2.0, 3)
    assert fields("viewer_started", "session_id", "protocol", "client_ip_hash", "user_agent") == (
        "v",
        "hls",
        "h",
        "ua",
    )
    assert fields("viewer_progress", "protocol", "bytes", "watched_ms") == ("ll-hls", 10, 1000)
    assert fields("viewer_ended", "protocol", "bytes", "watched_ms", "duration_ms") == (
        "whep",
        5,
        500,
        1500,
    )
    assert fields(
        "node_health",
        "cpu_percent",
        "memory_used_bytes",
        "bandwidth_in_bps",
        "bandwidth_out_bps",
        "node_streams",
        "node_viewers",
    ) == (50.0, 1 << 30, 7, 8, 2, 3)
    assert fields(
        "balancer_decision",
        "playback_id",
        "chosen_node_id",
        "score",
        "candidates",
        "client_ip_hash",
        "distance_km",
        "requires_pull",
    ) == ("pb", "n2", 0.5, 4, "ip2", 12.5, 1)
    # Columns a kind does not fill hold zero values.
    assert fields("balancer_decision", "session_id", "bytes", "fps") == ("", 0, 0.0)


async def test_an_explicit_ingestion_time_is_stored(warehouse: Warehouse) -> None:
    owner = tenant()
    rows = events_to_arrow([viewer("viewer_started", "v", tenant_id=owner)], 1_700_000_000_456)
    await warehouse.insert_arrow("events", rows)
    stored = await warehouse.query(
        "SELECT toUnixTimestamp64Milli(ingested_at) FROM events WHERE tenant_id = {t:String}",
        {"t": owner},
    )
    assert stored.rows == [(1_700_000_000_456,)]


async def test_the_sink_stores_each_event_once_and_rollups_count_it_once(
    warehouse: Warehouse,
) -> None:
    owner = tenant()
    ids = {"tenant_id": owner, "stream_id": "s1"}
    sink = EventSink(warehouse)
    minute = (now_ms() - 5 * 60_000) // 60_000 * 60_000
    batch = [
        viewer(
            "viewer_progress",
            f"v{i % 3}",
            bytes_sent=100,
            watched_ms=1000,
            at_ms=minute + 1000 * i,
            **ids,
        )
        for i in range(9)
    ]
    health = [
        event(
            "ingest_health",
            session_id="p",
            bitrate_bps=b,
            fps=f,
            keyframe_interval_s=2.0,
            dropped_frames=2,
            at_ms=minute,
            **ids,
        )
        for b, f in ((1000, 30.0), (3000, 20.0))
    ]
    first = await sink.write(batch + batch[:2] + health)
    assert (first.inserted, first.duplicates) == (11, 2)
    late = viewer("viewer_ended", "v3", bytes_sent=1, at_ms=minute + 60_000, **ids)
    again = await sink.write(batch + health + [late])
    assert (again.inserted, again.duplicates) == (1, 11)
    # A restarted consumer re-batches differently, and an id may arrive in upper case.
    shifted = [ev.Event.FromString(e.SerializeToString()) for e in batch[4:]]
    for copy in shifted:
        copy.event_id = copy.event_id.upper()
    assert await sink.write([*shifted, late]) == SinkResult(inserted=0, duplicates=6)
    assert await sink.write([]) == SinkResult(inserted=0, duplicates=0)

    raw = await warehouse.query(
        "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE tenant_id = {t:String}",
        {"t": owner},
    )
    assert raw.rows == [(12, 12)]
    viewers = await warehouse.query(
        """SELECT toUnixTimestamp(minute) * 1000, sum(bytes), sum(watched_ms),
                  uniqExactMerge(sessions)
           FROM viewers_by_stream_minute WHERE tenant_id = {t:String}
           GROUP BY minute ORDER BY minute""",
        {"t": owner},
    )
    assert viewers.rows == [(minute, 900, 9000, 3), (minute + 60_000, 1, 0, 1)]
    per_tenant = await warehouse.query(
        """SELECT sum(bytes), uniqExactMerge(sessions)
           FROM viewers_by_tenant_minute WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert per_tenant.rows == [(901, 4)]
    usage = await warehouse.query(
        """SELECT sum(bytes), sum(watched_ms), uniqExactMerge(sessions)
           FROM usage_by_tenant_hour WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert usage.rows == [(901, 9000, 4)]
    ingest = await warehouse.query(
        """SELECT avgMerge(bitrate_bps), avgMerge(fps), avgMerge(keyframe_interval_s),
                  sum(dropped_frames), sum(samples)
           FROM ingest_health_by_stream_minute WHERE tenant_id = {t:String}""",
        {"t": owner},
    )
    assert ingest.rows == [(2000.0, 25.0, 2.0, 4, 2)]


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


async def test_the_series_reads_the_minute_counts_the_sink_writes(
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
    await sink.count_viewers()
    counts = await warehouse.query(
        """SELECT stream_id, toUnixTimestamp(minute) * 1000, max(viewers)
           FROM viewer_counts_by_stream_minute WHERE tenant_id = {t:String}
           GROUP BY stream_id, minute ORDER BY stream_id, minute""",
        {"t": owner},
    )
    assert counts.rows == [("s1", minute, 3), ("s1", minute + 60_000, 1), ("s2", minute, 1)]
    window = TimeRange.from_ms(minute - 60_000, minute + 3 * 60_000)
    queries = AnalyticsQueries(warehouse)
    # Written but not yet counted: the series trails the events until the next count.
    await sink.write([viewer("viewer_progress", "d", at_ms=minute + 5000, **ids)])
    assert await queries.viewer_series(owner, window, "s1") == [0, 3, 1, 0]
    # A late event for an old minute is counted again when the sink next counts.
    await sink.count_viewers()
    assert await queries.viewer_series(owner, window, "s1") == [0, 4, 1, 0]
    assert await queries.viewer_series(owner, window) == [0, 5, 1, 0]
    # The minute under way is counted too, and again as it grows.
    now_minute = now_ms() // 60_000 * 60_000
    current = TimeRange.from_ms(now_minute, now_minute + 60_000)
    for session in ("e", "f"):
        at = max(now_minute, now_ms() - 1000)
        await sink.write([viewer("viewer_progress", session, at_ms=at, **ids)])
        await sink.count_viewers()
    assert await queries.viewer_series(owner, current, "s1") == [2]


async def test_a_recount_reads_only_the_streams_written_since_the_last(
    warehouse: Warehouse,
) -> None:
    from data_plane.analytics.queries import AnalyticsQueries
    from data_plane.analytics.time_range import TimeRange
    from data_plane.warehouse.viewer_counts import ViewerCounts

    owner = tenant()
    minute = (now_ms() - 5 * 60_000) // 60_000 * 60_000
    sink = EventSink(warehouse, ViewerCounts(warehouse))
    await sink.count_viewers()  # a new process's first count covers every stream
    await sink.write(
        [viewer("viewer_progress", "a", at_ms=minute, tenant_id=owner, stream_id="s1")]
    )
    # Written by another writer: its own counts, not this sink's, cover it.
    await EventSink(warehouse).write(
        [viewer("viewer_progress", s, at_ms=minute, tenant_id=owner, stream_id="s2") for s in "bc"]
    )
    await sink.count_viewers()
    window = TimeRange.from_ms(minute, minute + 60_000)
    queries = AnalyticsQueries(warehouse)
    assert await queries.viewer_series(owner, window, "s1") == [1]
    assert await queries.viewer_series(owner, window, "s2") == [0]
    assert await queries.viewer_series(owner, window) == [3]  # the tenant's, recounted whole


async def test_a_batch_spanning_hours_is_deduplicated_in_every_hour(warehouse: Warehouse) -> None:
    owner = tenant()
    hour = 3600 * 1000
    start = now_ms() - 5 * hour
    batch = [
        viewer("viewer_progress", f"v{i}", bytes_sent=1, tenant_id=owner, at_ms=start + i * hour)
        for i in range(5)
    ]
    sink = EventSink(warehouse)
    assert (await sink.write(batch)).inserted == 5
    # Alone, and beside new events of other hours.
    assert (await sink.write(batch[2:3])).duplicates == 1
    fresh = viewer("viewer_progress", "w", bytes_sent=1, tenant_id=owner, at_ms=start - hour)
    assert await sink.write([fresh, *batch[::-1]]) == SinkResult(inserted=1, duplicates=5)


async def test_migration_3_carries_the_ids_of_the_old_dedup_index(
    empty_warehouse: Warehouse,
) -> None:
    for migration in migrations(7)[:2]:
        for statement in migration.statements:
            await empty_warehouse.execute(statement)
    owner = tenant()
    stored = [viewer("viewer_started", f"v{i}", tenant_id=owner) for i in range(3)]
    await empty_warehouse.insert_arrow("events", events_to_arrow(stored))
    assert (await empty_warehouse.query("SELECT count() FROM event_ids")).scalar() == 3

    assert 3 in await migrate(empty_warehouse, raw_retention_days=7)
    tables = await empty_warehouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()"
    )
    names = {row[0] for row in tables.rows}
    assert "event_ids" not in names and "event_ids_mv" not in names
    assert await EventSink(empty_warehouse).write(stored) == SinkResult(inserted=0, duplicates=3)


async def test_a_migration_waits_for_an_engine_with_the_setting_it_needs(
    empty_warehouse: Warehouse,
) -> None:
    waiting = Migration(
        1,
        "a table",
        ("CREATE TABLE later (x UInt8) ENGINE = MergeTree ORDER BY x",),
        needs_setting="no_engine_has_this_setting",
    )
    assert await migrate(empty_warehouse, raw_retention_days=7, plan=[waiting]) == []
    recorded = await empty_warehouse.query("SELECT count() FROM schema_migrations")
    assert recorded.scalar() == 0
    tables = await empty_warehouse.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'later'"
    )
    assert tables.scalar() == 0
    # An engine that has the setting (here: one every MergeTree has) applies it.
    ready = replace(waiting, needs_setting="index_granularity")
    assert await migrate(empty_warehouse, raw_retention_days=7, plan=[ready]) == [1]
    assert await migrate(empty_warehouse, raw_retention_days=7, plan=[ready]) == []


async def test_raw_parts_leave_out_the_columns_their_rows_leave_at_defaults(
    empty_warehouse: Warehouse,
) -> None:
    assert 4 in await migrate(empty_warehouse, raw_retention_days=7)
    owner = tenant()
    health = node_health(cpu_percent=50.0, streams=2)
    health.tenant_id = owner  # so this test can find it
    sink = EventSink(empty_warehouse)
    # Two writes, two parts: one of viewer events, one of a health sample.
    await sink.write([viewer("viewer_progress", "v", bytes_sent=10, tenant_id=owner)])
    await sink.write([health])
    parts = await empty_warehouse.query(
        """
        SELECT name, groupArray(column) FROM system.parts_columns
        WHERE database = currentDatabase() AND table = 'events' AND active
        GROUP BY name
        """
    )
    written = [set(columns) for _, columns in parts.rows]
    assert len(written) == 2
    viewers_part = next(c for c in written if "bytes" in c)
    health_part = next(c for c in written if "cpu_percent" in c)
    assert "cpu_percent" not in viewers_part and "node_streams" not in viewers_part
    assert "bytes" not in health_part and "session_id" not in health_part

    query = """
        SELECT kind, session_id, bytes, cpu_percent, node_streams, user_agent FROM events
        WHERE tenant_id = {t:String} ORDER BY kind
        """
    expected = [("node_health", "", 0, 50.0, 2, ""), ("viewer_progress", "v", 10, 0.0, 0, "")]
    assert (await empty_warehouse.query(query, {"t": owner})).rows == expected
    # A merge of parts holding different columns reads the same.
    await empty_warehouse.execute("OPTIMIZE TABLE events FINAL")
    assert (await empty_warehouse.query(query, {"t": owner})).rows == expected
