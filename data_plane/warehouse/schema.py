"""The warehouse schema, as versioned migrations in ClickHouse SQL (chDB and server alike).

Exactly-once counting. Every hop before the warehouse delivers at least once, so the same
event can arrive twice. The raw `events` table is a ReplacingMergeTree whose sorting key
ends in the event id, so duplicates collapse when parts merge, and raw queries use
idempotent aggregates (uniqExact, min/max, countIf over distinct sessions) or FINAL. That
alone would not protect the rollups: materialized views add up every inserted row, before
any merge. Insert deduplication tokens only catch a byte-identical retried block, and a
consumer that restarts re-batches differently. So the sink (`event_sink.py`) never inserts
an event id the warehouse already has: it looks the batch's ids up in `event_ids_by_hour`
(the dedup index, filled by a view on `events`) and inserts only the new ones, which is
what makes the rollup sums exact. The index is ordered by the events' hour, then id
(migration 3; it was ordered by id alone): copies of an event carry its `occurred_at`, so
a lookup reads only the hours its batch spans, 2-3x faster than across the whole index.

Raw parts leave out the columns their rows leave at defaults (migration 4, ClickHouse's
`skip_empty_columns_on_insert`). An event fills the fields of its own kind only, so a
block of viewer events leaves most of the 37 columns empty: such a part had 157 files
(a column is 2-6 of them), and creating them was about half of the insert's CPU
(docs/benchmarks-history.md, 2026-12-06).
Reads fill a missing column with its type's default, what the rows held.

Viewer rollups keep the set of sessions seen per minute as 64-bit hashes of the session
ids (`uniqExact` over `sipHash64`): merging 1,440 minutes of a stream with thousands of
viewers is then about 40% cheaper than over the strings, and a collision (two sessions,
one hash) needs about 4 billion sessions in one minute to become likely.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from data_plane.warehouse.base import Warehouse

ROLLUP_RETENTION_DAYS = 400
#: Rows per index granule of the rollups. A query reads whole granules, and a rollup row
#: holds a set of session hashes, so ClickHouse's default 8192 rows would make a one-stream
#: query deserialize thousands of other streams' sets.
ROLLUP_GRANULARITY = 256
DEDUP_WINDOW_DAYS = 14


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    #: A MergeTree setting the statements set. An engine without it (an older server)
    #: skips the migration without recording it, so it applies after an upgrade.
    needs_setting: str | None = None


def _event_ids_ddl() -> str:
    """The dedup index of migration 1, keyed by the id alone (replaced in migration 3)."""
    return f"""
        CREATE TABLE IF NOT EXISTS event_ids (
            event_id UUID,
            occurred_at DateTime64(3, 'UTC')
        )
        ENGINE = ReplacingMergeTree
        ORDER BY event_id
        TTL toDateTime(occurred_at) + INTERVAL {DEDUP_WINDOW_DAYS} DAY
        """


def migrations(raw_retention_days: int) -> list[Migration]:
    raw_ttl = f"TTL toDateTime(occurred_at) + INTERVAL {int(raw_retention_days)} DAY"
    rollup_ttl = f"TTL minute + INTERVAL {ROLLUP_RETENTION_DAYS} DAY"
    return [
        Migration(
            1,
            "raw events, the dedup index and the rollups",
            (
                f"""
                CREATE TABLE IF NOT EXISTS events (
                    event_id UUID,
                    tenant_id LowCardinality(String),
                    node_id LowCardinality(String),
                    stream_id String,
                    kind LowCardinality(String),
                    occurred_at DateTime64(3, 'UTC'),
                    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
                    session_id String,
                    protocol LowCardinality(String),
                    client_ip_hash String,
                    user_agent String,
                    bytes UInt64,
                    watched_ms UInt64,
                    duration_ms UInt64,
                    bitrate_bps UInt64,
                    fps Float32,
                    keyframe_interval_s Float32,
                    dropped_frames UInt32,
                    video_codec LowCardinality(String),
                    width UInt16,
                    height UInt16,
                    audio_codec LowCardinality(String),
                    audio_sample_rate UInt32,
                    audio_channels UInt8,
                    end_reason LowCardinality(String),
                    cpu_percent Float32,
                    memory_used_bytes UInt64,
                    bandwidth_in_bps UInt64,
                    bandwidth_out_bps UInt64,
                    node_streams UInt32,
                    node_viewers UInt32,
                    playback_id String,
                    chosen_node_id String,
                    score Float32,
                    candidates UInt32,
                    distance_km Float32,
                    requires_pull UInt8
                )
                ENGINE = ReplacingMergeTree
                PARTITION BY toYYYYMMDD(occurred_at)
                ORDER BY (tenant_id, stream_id, kind, occurred_at, event_id)
                {raw_ttl}
                """,
                _event_ids_ddl(),
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
                SELECT event_id, occurred_at FROM events
                """,
                f"""
                CREATE TABLE IF NOT EXISTS viewers_by_stream_minute (
                    tenant_id LowCardinality(String),
                    stream_id String,
                    minute DateTime('UTC'),
                    sessions AggregateFunction(uniqExact, UInt64),
                    bytes SimpleAggregateFunction(sum, UInt64),
                    watched_ms SimpleAggregateFunction(sum, UInt64)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(minute)
                ORDER BY (tenant_id, stream_id, minute)
                {rollup_ttl}
                SETTINGS index_granularity = {ROLLUP_GRANULARITY}
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS viewers_by_stream_minute_mv
                TO viewers_by_stream_minute AS
                SELECT tenant_id, stream_id, toStartOfMinute(occurred_at) AS minute,
                       uniqExactState(sipHash64(session_id)) AS sessions,
                       sum(bytes) AS bytes, sum(watched_ms) AS watched_ms
                FROM events
                WHERE kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
                GROUP BY tenant_id, stream_id, minute
                """,
                f"""
                CREATE TABLE IF NOT EXISTS viewers_by_tenant_minute (
                    tenant_id LowCardinality(String),
                    minute DateTime('UTC'),
                    sessions AggregateFunction(uniqExact, UInt64),
                    bytes SimpleAggregateFunction(sum, UInt64),
                    watched_ms SimpleAggregateFunction(sum, UInt64)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(minute)
                ORDER BY (tenant_id, minute)
                {rollup_ttl}
                SETTINGS index_granularity = {ROLLUP_GRANULARITY}
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS viewers_by_tenant_minute_mv
                TO viewers_by_tenant_minute AS
                SELECT tenant_id, toStartOfMinute(occurred_at) AS minute,
                       uniqExactState(sipHash64(stream_id, session_id)) AS sessions,
                       sum(bytes) AS bytes, sum(watched_ms) AS watched_ms
                FROM events
                WHERE kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
                GROUP BY tenant_id, minute
                """,
                f"""
                CREATE TABLE IF NOT EXISTS ingest_health_by_stream_minute (
                    tenant_id LowCardinality(String),
                    stream_id String,
                    minute DateTime('UTC'),
                    bitrate_bps AggregateFunction(avg, UInt64),
                    fps AggregateFunction(avg, Float32),
                    keyframe_interval_s AggregateFunction(avg, Float32),
                    dropped_frames SimpleAggregateFunction(sum, UInt64),
                    samples SimpleAggregateFunction(sum, UInt64)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(minute)
                ORDER BY (tenant_id, stream_id, minute)
                {rollup_ttl}
                SETTINGS index_granularity = {ROLLUP_GRANULARITY}
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS ingest_health_by_stream_minute_mv
                TO ingest_health_by_stream_minute AS
                SELECT tenant_id, stream_id, toStartOfMinute(occurred_at) AS minute,
                       avgState(bitrate_bps) AS bitrate_bps, avgState(fps) AS fps,
                       avgState(keyframe_interval_s) AS keyframe_interval_s,
                       sum(toUInt64(dropped_frames)) AS dropped_frames,
                       toUInt64(count()) AS samples
                FROM events
                WHERE kind = 'ingest_health'
                GROUP BY tenant_id, stream_id, minute
                """,
                f"""
                CREATE TABLE IF NOT EXISTS usage_by_tenant_hour (
                    tenant_id LowCardinality(String),
                    hour DateTime('UTC'),
                    bytes SimpleAggregateFunction(sum, UInt64),
                    watched_ms SimpleAggregateFunction(sum, UInt64),
                    sessions AggregateFunction(uniqExact, UInt64)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(hour)
                ORDER BY (tenant_id, hour)
                TTL hour + INTERVAL {ROLLUP_RETENTION_DAYS} DAY
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS usage_by_tenant_hour_mv
                TO usage_by_tenant_hour AS
                SELECT tenant_id, toStartOfHour(occurred_at) AS hour,
                       sum(bytes) AS bytes, sum(watched_ms) AS watched_ms,
                       uniqExactState(sipHash64(stream_id, session_id)) AS sessions
                FROM events
                WHERE kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
                GROUP BY tenant_id, hour
                """,
            ),
        ),
        Migration(
            2,
            "finished per-minute viewer counts",
            (
                f"""
                CREATE TABLE IF NOT EXISTS viewer_counts_by_stream_minute (
                    tenant_id LowCardinality(String),
                    stream_id String,
                    minute DateTime('UTC'),
                    viewers SimpleAggregateFunction(max, UInt32)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(minute)
                ORDER BY (tenant_id, stream_id, minute)
                {rollup_ttl}
                SETTINGS index_granularity = {ROLLUP_GRANULARITY}
                """,
                f"""
                CREATE TABLE IF NOT EXISTS viewer_counts_by_tenant_minute (
                    tenant_id LowCardinality(String),
                    minute DateTime('UTC'),
                    viewers SimpleAggregateFunction(max, UInt32)
                )
                ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM(minute)
                ORDER BY (tenant_id, minute)
                {rollup_ttl}
                SETTINGS index_granularity = {ROLLUP_GRANULARITY}
                """,
            ),
        ),
        Migration(
            3,
            "the dedup index keyed by hour, then id",
            (
                # Every statement can run again after a crash: the old index is made to
                # exist before it is copied and dropped.
                _event_ids_ddl(),
                f"""
                CREATE TABLE IF NOT EXISTS event_ids_by_hour (
                    event_id UUID,
                    occurred_at DateTime64(3, 'UTC')
                )
                ENGINE = ReplacingMergeTree
                ORDER BY (toStartOfHour(occurred_at), event_id)
                TTL toDateTime(occurred_at) + INTERVAL {DEDUP_WINDOW_DAYS} DAY
                """,
                """
                CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_by_hour_mv
                TO event_ids_by_hour AS
                SELECT event_id, occurred_at FROM events
                """,
                "DROP VIEW IF EXISTS event_ids_mv",
                """
                INSERT INTO event_ids_by_hour (event_id, occurred_at)
                SELECT event_id, occurred_at FROM event_ids
                """,
                "DROP TABLE IF EXISTS event_ids",
            ),
        ),
        Migration(
            4,
            "raw parts without the columns a block leaves at their defaults",
            (
                """
                ALTER TABLE events MODIFY SETTING
                    serialization_info_version = 'with_missing_columns',
                    skip_empty_columns_on_insert = 1
                """,
            ),
            needs_setting="skip_empty_columns_on_insert",
        ),
    ]


async def _has_setting(warehouse: Warehouse, name: str) -> bool:
    found = await warehouse.query(
        "SELECT count() FROM system.merge_tree_settings WHERE name = {name:String}",
        {"name": name},
    )
    return bool(found.scalar())


async def migrate(
    warehouse: Warehouse,
    *,
    raw_retention_days: int,
    plan: list[Migration] | None = None,
) -> list[int]:
    """Applies the migrations (`plan`, by default the schema's) not yet recorded; returns
    the versions it applied."""
    await warehouse.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version UInt32,
            description String,
            applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
        )
        ENGINE = ReplacingMergeTree
        ORDER BY version
        """
    )
    done = await warehouse.query("SELECT version FROM schema_migrations FINAL")
    applied_before = {int(row[0]) for row in done.rows}
    applied = []
    for migration in migrations(raw_retention_days) if plan is None else plan:
        if migration.version in applied_before:
            continue
        if migration.needs_setting and not await _has_setting(warehouse, migration.needs_setting):
            continue
        # Statements are idempotent (IF NOT EXISTS): a migration cut short by a crash is
        # simply run again.
        for statement in migration.statements:
            await warehouse.execute(statement)
        await warehouse.insert_arrow(
            "schema_migrations",
            pa.table(
                {
                    "version": pa.array([migration.version], pa.uint32()),
                    "description": pa.array([migration.description], pa.string()),
                }
            ),
        )
        applied.append(migration.version)
    return applied
