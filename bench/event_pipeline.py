"""Events per second from simulated sidecars through ingress, bus and ingest into the
warehouse, sustained, with emit-to-queryable latency; and the raw ceilings of the parts.

    .venv/bin/python bench/event_pipeline.py --path single   # in-process bus + chDB
    .venv/bin/python bench/event_pipeline.py --path kafka    # tansu broker + chDB

A control plane runs in its own process (nodes, streams, the Directory). The data plane
runs as `tidecast data serve` processes: one with every role (single), or an ingress
process and an ingest process (kafka). This process is the load: N sidecars, each with
K calls in flight. After the run the data plane stops and this process opens its chDB
directory to count what arrived (`ingested_at` is stamped by the warehouse at insert;
throughput counts the events made queryable in the window after the warm-up, latency is
taken over the events emitted in that window, so neither counts the start-up) and to
measure the ceilings:

- bulk insert of 100k-row Arrow tables into chDB (rows/s);
- produce-only to the bus: the in-process bus, or tansu through aiokafka (events/s, in
  messages of 1000 events).

Last line: {"metric", "value", "unit", "ceiling", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tidecast.edge.v1 import edge_control_pb2 as edge_pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from bench._control import ROOT, control_process, database, enrollment_token
from bench._event_load import BatchTemplate, SidecarLoad, check_template
from bench._measure import free_port, percentile, stop_children_on_sigterm


def seed(api_url: str, token: str, streams: int) -> tuple[str, list[str]]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        tenant = client.post("/v1/tenants", json={"name": "bench"}).raise_for_status().json()
        ids = [
            client.post(f"/v1/tenants/{tenant['id']}/streams", json={"name": f"s{i}"})
            .raise_for_status()
            .json()["id"]
            for i in range(streams)
        ]
    return str(tenant["id"]), ids


async def enroll(grpc_target: str, api_url: str, token: str, count: int) -> list[tuple[str, str]]:
    nodes = []
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        stub = edge_control_pb2_grpc.EdgeControlStub(channel)
        for i in range(count):
            response = await stub.EnrollNode(
                edge_pb.EnrollNodeRequest(
                    enrollment_token=enrollment_token(api_url, token), hostname=f"sim{i}"
                )
            )
            nodes.append((response.node_id, response.node_credential))
    return nodes


@contextlib.contextmanager
def data_plane(roles: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    args = [sys.executable, "-m", "tidecast_cli.main", "data", "serve", "--log-level", "WARNING"]
    for role in roles:
        args += ["--role", role]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            args,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"data plane {roles} exited: {log.read_text()[-2000:]}")
            if "data plane is ready" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("data plane did not start")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drain(api_url: str, token: str, tenant: str, accepted: int, timeout_s: float = 600) -> float:
    """Waits until the warehouse holds what the ingress accepted (every event carries one
    byte of egress, so the usage API counts them) or stops growing for 20 s; returns the
    seconds it took."""
    started = time.monotonic()
    last, last_change = -1, time.monotonic()
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        while time.monotonic() - started < timeout_s:
            usage = client.get(f"/v1/tenants/{tenant}/analytics/usage")
            stored = sum(d["egress_bytes"] for d in usage.json().get("days", []))
            if stored >= accepted:
                break
            if stored != last:
                last, last_change = stored, time.monotonic()
            elif time.monotonic() - last_change > 20:
                break
            time.sleep(0.5)
    return time.monotonic() - started


class SeriesQueries:
    """Asks the analytics API for one stream's viewer series over the last 24 hours every
    `every_s` while the load runs (on a thread of its own), timing each request: what a
    dashboard sees of an ingesting data plane. Only requests started after `warmup_s` count."""

    def __init__(self, api_url: str, token: str, tenant: str, stream: str, every_s: float):
        self._client = httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self._path = f"/v1/tenants/{tenant}/analytics/viewers/timeseries"
        self._stream = stream
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="series-queries", daemon=True)
        self.latencies_s: list[float] = []
        self.failures = 0
        self._count_after = 0.0

    def start(self, warmup_s: float) -> None:
        self._count_after = time.monotonic() + warmup_s
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            minute = datetime.now(UTC).replace(second=0, microsecond=0)
            params = {
                "stream_id": self._stream,
                "start": (minute - timedelta(days=1)).isoformat(),
                "end": (minute + timedelta(minutes=1)).isoformat(),
            }
            started = time.monotonic()
            try:
                self._client.get(self._path, params=params).raise_for_status()
            except httpx.HTTPError:
                self.failures += 1
                continue
            if started >= self._count_after:
                self.latencies_s.append(time.monotonic() - started)


async def run_load(loads: list[SidecarLoad], seconds: float) -> None:
    await asyncio.gather(*(load.run(seconds) for load in loads))


async def analyse(chdb_path: Path, tenant: str, window: tuple[float, float]) -> dict[str, Any]:
    from data_plane.warehouse.chdb_warehouse import ChdbWarehouse

    warehouse = ChdbWarehouse(chdb_path)
    try:
        start_ms, end_ms = int(window[0] * 1000), int(window[1] * 1000)
        result = await warehouse.query(
            """
            SELECT count(),
                   uniqExact(event_id),
                   countIf(ingested_at >= fromUnixTimestamp64Milli({s:Int64}, 'UTC')
                           AND ingested_at < fromUnixTimestamp64Milli({e:Int64}, 'UTC')),
                   quantilesIf(0.5, 0.99)(
                       toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(occurred_at),
                       occurred_at >= fromUnixTimestamp64Milli({s:Int64}, 'UTC')
                       AND occurred_at < fromUnixTimestamp64Milli({e:Int64}, 'UTC'))
            FROM events WHERE tenant_id = {t:String}
            """,
            {"t": tenant, "s": start_ms, "e": end_ms},
        )
        rows, distinct, in_window, latency = result.rows[0]
        # The same quantiles per 10 s of the window: a backlog that builds up shows as a
        # rising p99, a stall as one bad slice.
        slices = await warehouse.query(
            """
            SELECT intDiv(toUnixTimestamp64Milli(occurred_at) - {s:Int64}, 10000) AS slice,
                   count(),
                   quantiles(0.5, 0.99)(
                       toUnixTimestamp64Milli(ingested_at) - toUnixTimestamp64Milli(occurred_at))
            FROM events
            WHERE tenant_id = {t:String}
              AND occurred_at >= fromUnixTimestamp64Milli({s:Int64}, 'UTC')
              AND occurred_at < fromUnixTimestamp64Milli({e:Int64}, 'UTC')
            GROUP BY slice ORDER BY slice
            """,
            {"t": tenant, "s": start_ms, "e": end_ms},
        )
        insert_ceiling = await chdb_insert_ceiling(warehouse)
    finally:
        await warehouse.close()
    return {
        "rows": int(rows),
        "distinct": int(distinct),
        "in_window": int(in_window),
        "latency_p50_ms": float(latency[0]),
        "latency_p99_ms": float(latency[1]),
        "latency_by_10s": [(int(n), float(q[0]), float(q[1])) for _, n, q in slices.rows],
        "insert_ceiling": insert_ceiling,
    }


async def chdb_insert_ceiling(warehouse: Any, rows: int = 100_000, rounds: int = 5) -> float:
    """Rows/s of bulk Arrow inserts into a copy of the events table (no views on it)."""
    from tidecast.events.v1 import ingress_pb2 as pb

    from data_plane.warehouse.event_rows import events_to_arrow

    template = BatchTemplate.build("node", "ceiling", ["s1", "s2"], 1000)
    events = []
    while len(events) < rows:
        events.extend(pb.PublishEventsRequest.FromString(template.stamp()).events)
    table = events_to_arrow(events[:rows])
    await warehouse.execute("DROP TABLE IF EXISTS bench_insert_ceiling")
    await warehouse.execute("CREATE TABLE bench_insert_ceiling AS events")
    started = time.perf_counter()
    for _ in range(rounds):
        await warehouse.insert_arrow("bench_insert_ceiling", table)
    elapsed = time.perf_counter() - started
    await warehouse.execute("DROP TABLE bench_insert_ceiling")
    return rows * rounds / elapsed


async def bus_ceiling(path: str, bootstrap: str | None, seconds: float = 5.0) -> float:
    """Events/s produced to the bus alone, in messages of 1000 events (acks=all on Kafka)."""
    from tidecast.events.v1 import ingress_pb2 as pb

    from data_plane.bus.base import OutgoingMessage
    from data_plane.ingress.batching import to_messages

    template = BatchTemplate.build("node", "ceiling", ["s1"], 1000)
    messages: list[OutgoingMessage] = to_messages(
        list(pb.PublishEventsRequest.FromString(template.stamp()).events)
    )
    if path == "kafka":
        from data_plane.bus.kafka import KafkaBus

        bus: Any = KafkaBus(bootstrap or "")
    else:
        from data_plane.bus.memory import InProcessBus

        bus = InProcessBus()
    await bus.start()
    try:
        topic = f"ceiling-{time.time_ns()}"
        await bus.ensure_topic(topic, 6)
        producer = bus.producer()
        sent = 0
        end = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < end:
            await producer.send_batch(topic, messages * 20)
            sent += 20 * 1000
        return sent / (time.perf_counter() - started)
    finally:
        await bus.close()


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["single", "kafka"], default="single")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--sidecars", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events/s offered in all (0: as fast as accepted)"
    )
    parser.add_argument(
        "--query-every-ms",
        type=float,
        default=0.0,
        help="also time a 24 h viewer series query this often during the load (0: none)",
    )
    args = parser.parse_args()
    check_template()
    command = "python bench/event_pipeline.py " + " ".join(sys.argv[1:])

    with (
        database("sqlite") as url,
        control_process(url) as control,
        tempfile.TemporaryDirectory() as tmp_dir,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_dir)
        tenant, streams = seed(control.api_url, control.token, args.streams)
        nodes = asyncio.run(
            enroll(control.grpc_target, control.api_url, control.token, args.sidecars)
        )
        ingress_port = free_port()
        api_port = free_port()
        chdb_path = tmp / "chdb"
        env = {
            "DATA_PLANE_CONTROL_TARGET": control.grpc_target,
            "DATA_PLANE_CONTROL_TOKEN": control.token,
            "DATA_PLANE_INGRESS_PORT": str(ingress_port),
            "DATA_PLANE_API_PORT": str(api_port),
            "DATA_PLANE_CHDB_PATH": str(chdb_path),
            "DATA_PLANE_WAREHOUSE": "chdb",
        }
        bootstrap = None
        if args.path == "kafka":
            from tests.harness.kafka import running_tansu

            broker = stack.enter_context(running_tansu())
            bootstrap = broker.bootstrap
            kafka_env = {**env, "DATA_PLANE_BUS": "kafka", "DATA_PLANE_KAFKA_BOOTSTRAP": bootstrap}
            stack.enter_context(data_plane(["ingest", "api"], kafka_env, tmp / "ingest.log"))
            stack.enter_context(data_plane(["ingress"], kafka_env, tmp / "ingress.log"))
        else:
            stack.enter_context(
                data_plane(
                    ["ingress", "ingest", "api"],
                    {**env, "DATA_PLANE_BUS": "memory"},
                    tmp / "data.log",
                )
            )
        loads = [
            SidecarLoad(
                f"127.0.0.1:{ingress_port}",
                credential,
                node_id,
                tenant,
                streams,
                args.batch,
                args.in_flight,
                args.rate / args.sidecars,
            )
            for node_id, credential in nodes
        ]
        queries = None
        if args.query_every_ms:
            queries = SeriesQueries(
                f"http://127.0.0.1:{api_port}",
                control.token,
                tenant,
                streams[0],
                args.query_every_ms / 1000,
            )
            queries.start(args.warmup)
        started = time.time()
        try:
            asyncio.run(run_load(loads, args.seconds + args.warmup))
        finally:
            if queries is not None:
                queries.stop()
        ended = time.time()
        accepted = sum(load.accepted for load in loads)
        drained_after = drain(f"http://127.0.0.1:{api_port}", control.token, tenant, accepted)
        stack.close()
        figures = asyncio.run(analyse(chdb_path, tenant, (started + args.warmup, ended)))
        ceiling_bus = (
            asyncio.run(bus_ceiling(args.path, bootstrap)) if args.path == "single" else None
        )

    if args.path == "kafka":
        ceiling_bus = float("nan")  # measured below with its own broker
        from tests.harness.kafka import running_tansu

        with running_tansu() as broker:
            ceiling_bus = asyncio.run(bus_ceiling("kafka", broker.bootstrap))
    assert ceiling_bus is not None
    window = ended - started - args.warmup
    rate = figures["in_window"] / window
    call_latency = [s for load in loads for s in load.latencies_s]
    lower = min(ceiling_bus, figures["insert_ceiling"])
    offered = f"{args.rate:,.0f} events/s offered" if args.rate else "closed loop"
    print(
        f"path: {args.path}; {args.sidecars} sidecars x {args.in_flight} in flight, "
        f"batches of {args.batch}, {offered}"
    )
    print(
        f"accepted by the ingress: {accepted} events ({accepted / (ended - started):,.0f}/s); "
        f"failed calls: {sum(load.failures for load in loads)}"
    )
    lost, doubled = accepted - figures["distinct"], figures["rows"] - figures["distinct"]
    print(
        f"stored: {figures['rows']} rows, {figures['distinct']} distinct "
        f"(lost: {lost}, doubled: {doubled})"
    )
    print(f"queryable in the {window:.0f} s window: {rate:,.0f} events/s")
    print(f"backlog drained {drained_after:.1f} s after the load stopped")
    print(
        f"emit -> queryable: p50 {figures['latency_p50_ms']:.0f} ms, "
        f"p99 {figures['latency_p99_ms']:.0f} ms"
    )
    print(
        "emit -> queryable per 10 s of the window (p50/p99 ms): "
        + ", ".join(f"{p50:.0f}/{p99:.0f}" for _, p50, p99 in figures["latency_by_10s"])
    )
    print(
        f"PublishEvents call latency: p50 {percentile(call_latency, 50) * 1000:.1f} ms, "
        f"p99 {percentile(call_latency, 99) * 1000:.1f} ms"
    )
    print(
        f"ceilings: bus produce-only {ceiling_bus:,.0f} events/s, "
        f"chDB bulk insert {figures['insert_ceiling']:,.0f} rows/s"
    )
    query_figures: dict[str, float] = {}
    if queries is not None:
        query_figures = {
            "query_p50_ms": round(percentile(queries.latencies_s, 50) * 1000, 1),
            "query_p99_ms": round(percentile(queries.latencies_s, 99) * 1000, 1),
        }
        print(
            f"viewer series (24 h, one stream) during the load: p50 "
            f"{query_figures['query_p50_ms']} ms, p99 {query_figures['query_p99_ms']} ms "
            f"({len(queries.latencies_s)} requests, {queries.failures} failed)"
        )
    print(f"command: {command}")
    print(
        json.dumps(
            {
                "metric": f"event_pipeline_{args.path}_events_per_s",
                "offered": args.rate or "closed loop",
                "value": round(rate),
                "unit": "events/s",
                "ceiling": round(lower),
                "ratio": round(rate / lower, 3),
                "latency_p50_ms": round(figures["latency_p50_ms"]),
                "latency_p99_ms": round(figures["latency_p99_ms"]),
                "lost": accepted - figures["distinct"],
                "doubled": figures["rows"] - figures["distinct"],
                **query_figures,
            }
        )
    )


if __name__ == "__main__":
    main()
