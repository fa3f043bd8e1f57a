"""Viewer time series for the last 24 hours, through the analytics API, with 10 million raw
events in the warehouse: an ordinary stream, a busy stream holding 1M of the events, and a whole
tenant.

    .venv/bin/python bench/analytics_query.py [--events 10000000] [--requests 200]

The events are generated inside chDB with SQL (`numbers()`), so the materialized views fill
the rollups as the sink's inserts would. Then this process lets go of the chDB directory,
a data-plane API process (`tidecast data serve --role api`) opens it, and the queries go
through HTTP with a tenant API token (a control-plane process answers who the caller is).
For reference, the same query is also timed on the raw table without the rollup.

Last line: {"metric", "value", "unit", "ceiling", "ratio", ...}: value = the worst p99
through the API; ceiling = the p99 of the busy stream's series query in chDB directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._control import control_process, database
from bench._measure import free_port, median, percentile, stop_children_on_sigterm
from bench.event_pipeline import data_plane

DAY_MS = 86_400_000


async def generate(path: Path, tenant: str, total: int, day_start_ms: int) -> dict[str, float]:
    from data_plane.analytics.queries import AnalyticsQueries
    from data_plane.analytics.time_range import TimeRange
    from data_plane.warehouse.chdb_warehouse import ChdbWarehouse
    from data_plane.warehouse.schema import migrate
    from data_plane.warehouse.viewer_counts import ViewerCounts

    warehouse = ChdbWarehouse(path)
    busy = total // 10
    same_tenant = total * 2 // 10
    others = total - busy - same_tenant
    timings: dict[str, float] = {}
    try:
        await migrate(warehouse, raw_retention_days=30)
        plans = [
            # (rows, tenant expression, stream expression, sessions)
            (busy, f"'{tenant}'", "'busy'", 5000),
            (same_tenant, f"'{tenant}'", "concat('s', toString(number % 99))", 200),
            (
                others,
                "concat('other-', toString(number % 9))",
                "concat('o', toString(number % 50))",
                200,
            ),
        ]
        started = time.perf_counter()
        for rows, tenant_sql, stream_sql, sessions in plans:
            await warehouse.execute(
                f"""
                INSERT INTO events (event_id, tenant_id, node_id, stream_id, kind, occurred_at,
                                    session_id, protocol, bytes, watched_ms)
                SELECT generateUUIDv7(number), {tenant_sql}, 'node-1', {stream_sql},
                       'viewer_progress',
                       fromUnixTimestamp64Milli(
                           toInt64({day_start_ms} + (number * 7919) % {DAY_MS}), 'UTC'),
                       toString(number % {sessions}), 'hls', 100000, 10000
                FROM numbers({rows})
                """  # noqa: S608 - benchmark data generated from constants
            )
        timings["generate_s"] = time.perf_counter() - started
        # Steady state: the parts the bulk load left are merged, as background merges do
        # within minutes in a running warehouse.
        started = time.perf_counter()
        for table in ("viewers_by_stream_minute", "viewers_by_tenant_minute"):
            await warehouse.execute(f"OPTIMIZE TABLE {table} FINAL")
        timings["optimize_s"] = time.perf_counter() - started
        # The ingest writes the minutes' counts as it goes (every second); here, once for
        # the day.
        started = time.perf_counter()
        counts = ViewerCounts(warehouse)
        counts.note(day_start_ms / 1000, (day_start_ms + DAY_MS) / 1000 - 1, None)
        await counts.recount()
        timings["finish_s"] = time.perf_counter() - started
        raw = []
        for _ in range(5):
            t0 = time.perf_counter()
            await warehouse.query(
                """SELECT toStartOfMinute(occurred_at) AS m, uniqExact(session_id)
                   FROM events WHERE tenant_id = {t:String} AND stream_id = 'busy'
                   AND kind IN ('viewer_started', 'viewer_progress', 'viewer_ended')
                   GROUP BY m ORDER BY m""",
                {"t": tenant},
            )
            raw.append((time.perf_counter() - t0) * 1000)
        timings["raw_busy_median_ms"] = median(raw)
        direct = []
        queries = AnalyticsQueries(warehouse)
        day = TimeRange.from_ms(day_start_ms, day_start_ms + DAY_MS)
        for _ in range(10):  # warm-up, as the API measurement has
            await queries.viewer_series(tenant, day, "busy")
        for _ in range(50):
            t0 = time.perf_counter()
            await queries.viewer_series(tenant, day, "busy")
            direct.append((time.perf_counter() - t0) * 1000)
        timings["rollup_busy_p99_ms"] = percentile(direct, 99)
        count = await warehouse.query("SELECT count() FROM events")
        timings["rows"] = float(count.scalar())
    finally:
        await warehouse.close()
    return timings


def measure(api_url: str, token: str, path: str, params: dict[str, str], n: int) -> list[float]:
    timings = []
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(10):  # warm-up: connections, caches
            client.get(path, params=params).raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(path, params=params)
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            assert len(response.json()["viewers"]) == 1440
    return timings


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    command = "python bench/analytics_query.py " + " ".join(sys.argv[1:])
    # The last 24 hours up to the current minute, as a dashboard asks.
    day_start = (
        datetime.now(UTC).replace(second=0, microsecond=0)
        + timedelta(minutes=1)
        - (timedelta(days=1))
    )
    day_start_ms = int(day_start.timestamp() * 1000)
    with (
        database("sqlite") as url,
        control_process(url) as control,
        tempfile.TemporaryDirectory() as tmp,
    ):
        headers = {"Authorization": f"Bearer {control.token}"}
        with httpx.Client(base_url=control.api_url, headers=headers) as client:
            tenant = client.post("/v1/tenants", json={"name": "q"}).raise_for_status().json()["id"]
            token = (
                client.post(f"/v1/tenants/{tenant}/tokens", json={"name": "r", "scopes": ["read"]})
                .raise_for_status()
                .json()["token"]
            )
        chdb_path = Path(tmp) / "chdb"
        generated = asyncio.run(generate(chdb_path, tenant, args.events, day_start_ms))
        print(
            f"generated {generated['rows']:,.0f} events in {generated['generate_s']:.1f} s; "
            f"rollup parts merged in {generated['optimize_s']:.1f} s, the day's minutes "
            f"counted in {generated['finish_s']:.1f} s"
        )
        api_port = free_port()
        env = {
            "DATA_PLANE_CONTROL_TARGET": control.grpc_target,
            "DATA_PLANE_CONTROL_TOKEN": control.token,
            "DATA_PLANE_API_PORT": str(api_port),
            "DATA_PLANE_CHDB_PATH": str(chdb_path),
            "DATA_PLANE_BUS": "memory",
        }
        results = {}
        with data_plane(["api"], env, Path(tmp) / "api.log"):
            api_url = f"http://127.0.0.1:{api_port}"
            window = {
                "start": day_start.isoformat(),
                "end": (day_start + timedelta(days=1)).isoformat(),
            }
            path = f"/v1/tenants/{tenant}/analytics/viewers/timeseries"
            for name, extra in (
                ("ordinary stream", {"stream_id": "s7"}),
                ("busy stream (1M events)", {"stream_id": "busy"}),
                ("whole tenant", {}),
            ):
                timings = measure(api_url, token, path, {**window, **extra}, args.requests)
                results[name] = (percentile(timings, 50), percentile(timings, 99))
    for name, (p50, p99) in results.items():
        print(f"{name:26s} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   ({args.requests} requests)")
    print(
        f"reference: the busy stream's series from the raw table, no rollup, in chDB directly: "
        f"{generated['raw_busy_median_ms']:.1f} ms median"
    )
    print(
        f"floor: the busy stream's series query in chDB directly, no HTTP: "
        f"p99 {generated['rollup_busy_p99_ms']:.1f} ms"
    )
    print(f"command: {command}")
    worst = max(p99 for _, p99 in results.values())
    floor = generated["rollup_busy_p99_ms"]
    print(
        json.dumps(
            {
                "metric": "analytics_viewer_timeseries_24h_p99_ms",
                "value": round(worst, 1),
                "unit": "ms",
                "ceiling": round(floor, 1),
                "ratio": round(worst / floor, 3),
                "target": 20.0,
                "events": int(generated["rows"]),
                **{k: round(v[1], 1) for k, v in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
