"""`tidecast stream create` against a served control plane: the URLs a broadcaster and a
viewer need, for every protocol the edge speaks, in text and in `--json`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "tidecast_cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment a CLI user has against a served control plane with public bases."""
    http_port = free_port()
    env = {
        **os.environ,
        "CONTROL_PLANE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'control.db'}",
        "CONTROL_PLANE_HTTP_PORT": str(http_port),
        "CONTROL_PLANE_GRPC_PORT": str(free_port()),
        "CONTROL_PLANE_PUBLIC_RTMP_URL": "rtmp://live.example.test/live",
        "CONTROL_PLANE_PUBLIC_PLAYBACK_URL": "https://play.example.test",
        "CONTROL_PLANE_PUBLIC_WEBRTC_URL": "https://rtc.example.test/",
    }
    bootstrap = subprocess.run(
        [*CLI, "control", "bootstrap-admin", "--email", "ops@example.test", "--password", "pw-pw"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    base = f"http://127.0.0.1:{http_port}"
    env["TIDECAST_URL"] = base
    env["TIDECAST_TOKEN"] = bootstrap.stdout.rsplit(" ", 1)[-1].strip()
    server = subprocess.Popen([*CLI, "control", "serve"], env=env)
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
        yield env
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def tidecast(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stream_create_prints_rtmp_whip_hls_and_whep_urls(cli_env: dict[str, str]) -> None:
    tidecast(cli_env, "tenant", "create", "acme")

    created = json.loads(tidecast(cli_env, "stream", "create", "--tenant", "acme", "a", "--json"))
    key, playback_id = created["stream_key"], created["playback_id"]
    assert created["ingest_url"] == f"rtmp://live.example.test/live/{key}"
    assert created["whip_url"] == "https://rtc.example.test/whip"
    assert created["playback_url"] == f"https://play.example.test/hls/{playback_id}/index.m3u8"
    assert created["whep_url"] == f"https://rtc.example.test/whep/{playback_id}"

    text = tidecast(cli_env, "stream", "create", "--tenant", "acme", "b")
    fields = dict(line.split(None, 1) for line in text.splitlines()[:4])
    urls = dict(
        (label, value.strip())
        for label, value in (line.partition(":")[::2] for line in text.splitlines())
        if label.startswith(("push (", "watch ("))
    )
    key, playback_id = fields["stream_key"], fields["playback_id"]
    assert urls["push (RTMP)"] == f"rtmp://live.example.test/live/{key}"
    assert urls["push (WHIP)"] == "https://rtc.example.test/whip  (the stream key as Bearer token)"
    assert urls["watch (HLS)"] == f"https://play.example.test/hls/{playback_id}/index.m3u8"
    assert urls["watch (WHEP)"] == f"https://rtc.example.test/whep/{playback_id}"


def test_obs_gets_server_and_stream_key_apart_and_stream_commands_need_no_tenant(
    cli_env: dict[str, str],
) -> None:
    tidecast(cli_env, "tenant", "create", "acme")
    tidecast(cli_env, "tenant", "create", "globex")
    text = tidecast(cli_env, "stream", "create", "--tenant", "globex", "show")
    fields = dict(line.split(None, 1) for line in text.splitlines()[:4])
    lines = [line.strip() for line in text.splitlines()]
    assert "OBS Server:     rtmp://live.example.test/live" in lines
    assert f"OBS Stream Key: {fields['stream_key']}" in lines

    stream_id = fields["id"]
    shown = json.loads(tidecast(cli_env, "stream", "get", stream_id, "--json"))
    assert shown["name"] == "show"
    tidecast(cli_env, "stream", "update", stream_id, "--name", "renamed")
    rotated = json.loads(tidecast(cli_env, "stream", "rotate-key", stream_id, "--json"))
    assert rotated["stream_key"] != fields["stream_key"]
    tidecast(cli_env, "stream", "delete", stream_id)
    missing = subprocess.run(
        [*CLI, "stream", "get", stream_id], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode != 0 and "no stream" in missing.stderr
