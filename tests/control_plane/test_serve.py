"""`tidecast control serve` as deployed: its own process on uvloop, REST through uvicorn's
httptools parser and gRPC beside it, answering over real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(REST base URL, gRPC target, platform token) of a served control plane."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "CONTROL_PLANE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        "CONTROL_PLANE_HTTP_PORT": str(http_port),
        "CONTROL_PLANE_GRPC_PORT": str(grpc_port),
    }
    cli = [sys.executable, "-m", "tidecast_cli.main", "control"]
    bootstrap = subprocess.run(
        [*cli, "bootstrap-admin", "--email", "ops@example.test", "--password", "pw-pw-pw-pw"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = bootstrap.stdout.rsplit(" ", 1)[-1].strip()
    server = subprocess.Popen([*cli, "serve"], env=env)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "the control plane exited"
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the control plane did not start"
            time.sleep(0.1)
        yield base, f"127.0.0.1:{grpc_port}", token
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_served_control_plane_lists_streams_and_answers_grpc(
    served: tuple[str, str, str],
) -> None:
    base, grpc_target, token = served
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers) as client:
        tenant = client.post("/v1/tenants", json={"name": "served"}).json()["id"]
        ids = sorted(
            client.post(f"/v1/tenants/{tenant}/streams", json={"name": f"s{i}"}).json()["id"]
            for i in range(3)
        )
        first = client.get(f"/v1/tenants/{tenant}/streams", params={"limit": 2}).json()
        assert [s["id"] for s in first["items"]] == ids[:2]
        rest = client.get(
            f"/v1/tenants/{tenant}/streams", params={"limit": 2, "cursor": first["next_cursor"]}
        ).json()
        assert [s["id"] for s in rest["items"]] == ids[2:] and rest["next_cursor"] is None

    with grpc.insecure_channel(grpc_target) as channel:
        stub = edge_control_pb2_grpc.EdgeControlStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.EnrollNode(pb.EnrollNodeRequest(enrollment_token="nope", hostname="h"))
        assert refused.value.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
