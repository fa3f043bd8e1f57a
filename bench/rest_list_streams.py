"""REST `GET /v1/tenants/{id}/streams` (a page of 50) with an API token: requests/s, p99.

    .venv/bin/python bench/rest_list_streams.py [--backend sqlite|postgres|both]

The control plane runs in its own process (one uvicorn worker on uvloop, as `tidecast
control serve` runs it); the load comes from wrk (Debian package `wrk`) with keep-alive
connections.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._control import control_process, database, seed_streams
from bench._measure import median, stop_children_on_sigterm


def parse_wrk(output: str) -> tuple[float, float]:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99 is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rate, float(p99.group(1)) * scale


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, float]:
    with database(backend) as url, control_process(url) as control:
        tenant_id, _, _ = seed_streams(control.api_url, control.token, args.streams)
        target = f"{control.api_url}/v1/tenants/{tenant_id}/streams?limit=50"
        page = httpx.get(target, headers={"Authorization": f"Bearer {control.token}"}).json()
        assert len(page["items"]) == 50, page
        header = f"Authorization: Bearer {control.token}"
        subprocess.run(
            ["wrk", "-t1", "-c10", "-d2s", "-H", header, target], check=True, capture_output=True
        )
        server = psutil.Process(control.pid)
        rates, p99s = [], []
        for run in range(args.runs):
            server.cpu_percent(None)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{args.duration}s",
                    "--latency",
                    "-H",
                    header,
                    target,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            cpu = server.cpu_percent(None)
            rate, p99 = parse_wrk(out)
            rates.append(rate)
            p99s.append(p99)
            print(
                f"  {backend} run {run + 1}: {rate:,.0f} requests/s, p99 {p99:.1f} ms, "
                f"server CPU {cpu:.0f}%"
            )
        return {"rate": median(rates), "p99": median(p99s)}


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (scripts/bootstrap installs it)")
    print(f"command: {' '.join(sys.argv)}")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {b: run_backend(b, args) for b in backends}
    for backend, r in results.items():
        print(
            f"{backend}: median of {args.runs} runs: {r['rate']:,.0f} requests/s, "
            f"p99 {r['p99']:.1f} ms"
        )
    last = results[backends[-1]]
    print(
        json.dumps(
            {
                "metric": f"rest_list_streams_{backends[-1]}",
                "value": round(last["rate"]),
                "unit": "requests/s",
                "p99_ms": round(last["p99"], 1),
                "by_backend": {
                    b: {"value": round(r["rate"]), "p99_ms": round(r["p99"], 1)}
                    for b, r in results.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
