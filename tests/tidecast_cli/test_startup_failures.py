"""A service that cannot listen stops its command at once: the real CLI in a subprocess,
with a port held by the test. One line names the service, the address and how to change
it; no traceback; exit code 1; nothing left running (the command returns)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLI = [sys.executable, "-m", "tidecast_cli.main"]
#: Generous: a command that hangs instead of exiting fails here rather than never.
_EXIT_WITHIN_S = 90
_UP_PORTS = ("http", "grpc", "rtmp", "hls", "edge-admin", "ingress", "analytics", "webrtc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_", "DATA_PLANE_"))}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=_EXIT_WITHIN_S
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "never retrieved" not in result.stderr
    # gRPC's C core logs its own line ("E... add_port.cc ...") before ours; ours is last.
    assert result.stderr.strip().splitlines()[-1] == expected, result.stderr


def _up_args(tmp_path: Path, ports: dict[str, int]) -> list[str]:
    args = ["up", "--data-dir", str(tmp_path / "data")]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    return args


@pytest.mark.parametrize(
    ("flag", "service"),
    [
        ("http", "the control plane REST API"),
        ("ingress", "the data plane event ingress"),
        ("hls", "the edge HLS server"),
    ],
)
def test_up_stops_with_one_line_when_a_port_is_taken(
    tmp_path: Path, flag: str, service: str
) -> None:
    ports = {name: free_port() for name in _UP_PORTS}
    with held_port() as taken:
        ports[flag] = taken
        result = _run(_up_args(tmp_path, ports), _env())
    _assert_one_line(
        result,
        f"error: {service} cannot listen on 127.0.0.1:{taken}: Address already in use "
        f"(change it with --{flag}-port)",
    )


def test_control_serve_stops_with_one_line_when_its_rest_port_is_taken(tmp_path: Path) -> None:
    with held_port() as taken:
        result = _run(
            ["control", "serve"],
            _env(
                CONTROL_PLANE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
                CONTROL_PLANE_HTTP_PORT=str(taken),
                CONTROL_PLANE_GRPC_PORT=str(free_port()),
            ),
        )
    _assert_one_line(
        result,
        f"error: the control plane REST API cannot listen on 127.0.0.1:{taken}: "
        "Address already in use (change it with CONTROL_PLANE_HTTP_PORT)",
    )


def test_data_serve_stops_with_one_line_when_its_ingress_port_is_taken() -> None:
    with held_port() as taken:
        result = _run(
            ["data", "serve", "--role", "ingress"],
            _env(
                DATA_PLANE_BUS="memory",
                DATA_PLANE_INGRESS_PORT=str(taken),
                DATA_PLANE_CONTROL_TARGET=f"127.0.0.1:{free_port()}",
            ),
        )
    _assert_one_line(
        result,
        f"error: the data plane event ingress cannot listen on 127.0.0.1:{taken}: "
        "Address already in use (change it with DATA_PLANE_INGRESS_PORT)",
    )


@contextmanager
def control_plane(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """`tidecast up --no-edge`: (its data dir, its gRPC port)."""
    ports = {name: free_port() for name in _UP_PORTS}
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [*CLI, *_up_args(tmp_path, ports), "--no-edge"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + _EXIT_WITHIN_S
        while True:
            assert process.poll() is None, "tidecast up exited"
            try:
                if httpx.get(f"http://127.0.0.1:{ports['http']}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tidecast up did not start"
            time.sleep(0.2)
        yield data_dir, ports["grpc"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(_EXIT_WITHIN_S)


def test_edge_run_stops_with_one_line_when_its_hls_port_is_taken(tmp_path: Path) -> None:
    with control_plane(tmp_path) as (data_dir, grpc_port):
        created = _run(["cluster", "create", "edges", "--data-dir", str(data_dir)], _env())
        assert created.returncode == 0, created.stderr
        token = _run(
            ["node", "enroll-token", "--cluster", "edges", "--data-dir", str(data_dir), "--json"],
            _env(),
        )
        assert token.returncode == 0, token.stderr
        enroll = token.stdout.split('"token": "', 1)[1].split('"', 1)[0]
        with held_port() as taken:
            result = _run(
                [
                    "edge",
                    "run",
                    "--control",
                    f"127.0.0.1:{grpc_port}",
                    "--enroll-token",
                    enroll,
                    "--state-dir",
                    str(tmp_path / "edge"),
                ],
                _env(
                    EDGE_HTTP_PORT=str(taken),
                    EDGE_RTMP_PORT=str(free_port()),
                    EDGE_WEBRTC_PORT=str(free_port()),
                    EDGE_ADMIN_PORT=str(free_port()),
                    EDGE_IP_HASH_SALT="a-salt-for-this-test-only",
                ),
            )
    _assert_one_line(
        result,
        f"error: the edge HLS server cannot listen on 127.0.0.1:{taken}: "
        "Address already in use (change it with EDGE_HTTP_PORT)",
    )
