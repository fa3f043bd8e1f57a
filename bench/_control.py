"""Starts a control-plane process and seeds it, for the control-plane benchmarks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._measure import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ControlProcess:
    api_url: str
    grpc_target: str
    token: str
    pid: int


@contextlib.contextmanager
def control_process(database_url: str) -> Iterator[ControlProcess]:
    http_port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "control_server.py"),
                "--database-url",
                database_url,
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
                "--token-file",
                str(token_file),
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            deadline = time.monotonic() + 60
            api_url = f"http://127.0.0.1:{http_port}"
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("control server exited")
                with contextlib.suppress(httpx.HTTPError):
                    if token_file.exists() and httpx.get(f"{api_url}/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("control server did not start")
                time.sleep(0.1)
            yield ControlProcess(
                api_url, f"127.0.0.1:{grpc_port}", token_file.read_text(), proc.pid
            )
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def seed_streams(api_url: str, token: str, count: int) -> tuple[str, list[str], list[str]]:
    """Creates a tenant with `count` streams; returns tenant id, keys, playback ids."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        tenant = client.post("/v1/tenants", json={"name": "bench"}).raise_for_status().json()
        keys, playback_ids = [], []
        for i in range(count):
            stream = (
                client.post(f"/v1/tenants/{tenant['id']}/streams", json={"name": f"s{i}"})
                .raise_for_status()
                .json()
            )
            keys.append(stream["stream_key"])
            playback_ids.append(stream["playback_id"])
    return tenant["id"], keys, playback_ids


def enrollment_token(api_url: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=30) as client:
        cluster = client.post(
            "/v1/clusters", json={"name": f"bench-{time.time_ns()}", "region": "local"}
        ).raise_for_status()
        out = client.post(
            f"/v1/clusters/{cluster.json()['id']}/enrollment-tokens", json={"ttl_seconds": 600}
        ).raise_for_status()
        return str(out.json()["token"])


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """A database URL for a benchmark: a temporary SQLite file, BENCH_POSTGRES_URL, or a
    throwaway PostgreSQL server from the test harness."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/bench.db"
    elif os.environ.get("BENCH_POSTGRES_URL"):
        yield os.environ["BENCH_POSTGRES_URL"]
    else:
        from tests.harness.postgres import running_postgres

        with running_postgres() as url:
            yield url
