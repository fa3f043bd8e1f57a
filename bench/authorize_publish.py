"""AuthorizePublish over gRPC: decisions per second and latency, 1,000 streams in the store.

    .venv/bin/python bench/authorize_publish.py [--backend sqlite|postgres|both]

The control plane runs in its own process (REST + gRPC, as deployed); this process is the
load generator: many concurrent unary calls over a few channels, with a real node
credential, cycling through valid keys (plus 10% unknown keys).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from bench._control import control_process, database, enrollment_token, seed_streams
from bench._measure import free_port, median, percentile, stop_children_on_sigterm


async def enroll(target: str, token: str) -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = edge_control_pb2_grpc.EdgeControlStub(channel)
        response = await stub.EnrollNode(
            pb.EnrollNodeRequest(enrollment_token=token, hostname="bench", region="local")
        )
        return response.node_credential


async def warm(target: str, credential: str, keys: list[str]) -> None:
    metadata = (("authorization", f"Bearer {credential}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = edge_control_pb2_grpc.EdgeControlStub(channel)
        for start in range(0, len(keys), 16):
            await asyncio.gather(
                *(
                    stub.AuthorizePublish(
                        pb.AuthorizePublishRequest(stream_key=key), metadata=metadata
                    )
                    for key in keys[start : start + 16]
                )
            )


async def load(
    target: str,
    credential: str,
    keys: list[str],
    duration: float,
    concurrency: int,
    channels: int,
    unknown: float,
) -> tuple[int, list[float], int]:
    metadata = (("authorization", f"Bearer {credential}"),)
    chans = [grpc.aio.insecure_channel(target) for _ in range(channels)]
    stubs = [edge_control_pb2_grpc.EdgeControlStub(c) for c in chans]
    latencies: list[float] = []
    allowed = 0
    stop_at = time.perf_counter() + duration

    async def worker(index: int) -> None:
        nonlocal allowed
        stub = stubs[index % len(stubs)]
        rng = random.Random(index)
        while time.perf_counter() < stop_at:
            key = rng.choice(keys) if rng.random() >= unknown else f"sk_unknown{rng.random()}"
            started = time.perf_counter()
            response = await stub.AuthorizePublish(
                pb.AuthorizePublishRequest(
                    stream_key=key, protocol=common_pb2.MEDIA_PROTOCOL_RTMP, client_ip="127.0.0.1"
                ),
                metadata=metadata,
            )
            latencies.append(time.perf_counter() - started)
            allowed += response.allowed

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    for channel in chans:
        await channel.close()
    return len(latencies), latencies, allowed


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, float]:
    with database(backend) as url, control_process(url) as control:
        _tenant, keys, _ = seed_streams(control.api_url, control.token, args.streams)
        credential = asyncio.run(
            enroll(control.grpc_target, enrollment_token(control.api_url, control.token))
        )
        # Warm-up: every key once (the first publish of a stream on a node is a write),
        # then a short burst.
        asyncio.run(warm(control.grpc_target, credential, keys))
        asyncio.run(
            load(
                control.grpc_target,
                credential,
                keys,
                2.0,
                args.concurrency,
                args.channels,
                args.unknown,
            )
        )
        server = psutil.Process(control.pid)
        rates, p50s, p99s, cpus = [], [], [], []
        for run in range(args.runs):
            server.cpu_percent(None)
            count, latencies, allowed = asyncio.run(
                load(
                    control.grpc_target,
                    credential,
                    keys,
                    args.duration,
                    args.concurrency,
                    args.channels,
                    args.unknown,
                )
            )
            cpus.append(server.cpu_percent(None))
            rate = count / args.duration
            p50 = percentile(latencies, 50) * 1000
            p99 = percentile(latencies, 99) * 1000
            rates.append(rate)
            p50s.append(p50)
            p99s.append(p99)
            print(
                f"  {backend} run {run + 1}: {rate:,.0f} decisions/s, p50 {p50:.2f} ms, "
                f"p99 {p99:.2f} ms, {allowed} allowed of {count}, "
                f"server CPU {cpus[-1]:.0f}%"
            )
        return {
            "rate": median(rates),
            "p50": median(p50s),
            "p99": median(p99s),
            "cpu": median(cpus),
        }


def run_ceiling(args: argparse.Namespace) -> dict[str, float]:
    """The same load against a servicer that does no work at all."""
    import subprocess

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "grpc_ceiling_server.py"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        target = f"127.0.0.1:{port}"
        asyncio.run(load(target, "x", ["k"], 2.0, args.concurrency, args.channels, 0.0))
        rates, p99s = [], []
        for _ in range(args.runs):
            count, latencies, _ = asyncio.run(
                load(target, "x", ["k"], args.duration, args.concurrency, args.channels, 0.0)
            )
            rates.append(count / args.duration)
            p99s.append(percentile(latencies, 99) * 1000)
        return {"rate": median(rates), "p99": median(p99s)}
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--unknown",
        type=float,
        default=0.0,
        help="fraction of requests with a random wrong key (never cached)",
    )
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {b: run_backend(b, args) for b in backends}
    ceiling = run_ceiling(args)
    print(
        f"ceiling (grpc.aio servicer doing nothing, same load): {ceiling['rate']:,.0f} "
        f"calls/s, p99 {ceiling['p99']:.2f} ms"
    )
    for backend, r in results.items():
        print(
            f"{backend}: median of {args.runs} runs: {r['rate']:,.0f} decisions/s, "
            f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, server CPU {r['cpu']:.0f}%"
        )
    last = results[backends[-1]]
    print(
        json.dumps(
            {
                "metric": f"authorize_publish_grpc_{backends[-1]}",
                "value": round(last["rate"]),
                "unit": "decisions/s",
                "p99_ms": round(last["p99"], 2),
                "by_backend": {
                    b: {"value": round(r["rate"]), "p99_ms": round(r["p99"], 2)}
                    for b, r in results.items()
                },
                "ceiling": round(ceiling["rate"]),
                "ratio": round(last["rate"] / ceiling["rate"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
