"""`tidecast up` as a newcomer runs it: start, create a stream with the CLI, push with
ffmpeg, watch the printed HLS URL, stop with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.binaries import needs_ffmpeg, require

pytestmark = [pytest.mark.e2e, pytest.mark.media, needs_ffmpeg, pytest.mark.timeout(180)]

TIDECAST = str(Path(sys.executable).parent / "tidecast")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [TIDECAST, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("TIDECAST_URL", "TIDECAST_TOKEN")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_up_serves_a_stream_end_to_end_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {
        name: free_port()
        for name in ("http", "grpc", "rtmp", "hls", "admin", "ingress", "analytics", "webrtc")
    }
    process = subprocess.Popen(
        [
            TIDECAST,
            "up",
            "--data-dir",
            str(data_dir),
            "--http-port",
            str(ports["http"]),
            "--grpc-port",
            str(ports["grpc"]),
            "--rtmp-port",
            str(ports["rtmp"]),
            "--hls-port",
            str(ports["hls"]),
            "--edge-admin-port",
            str(ports["admin"]),
            "--ingress-port",
            str(ports["ingress"]),
            "--analytics-port",
            str(ports["analytics"]),
            "--webrtc-port",
            str(ports["webrtc"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while not any("ready" in line for line in lines):
            line = process.stdout.readline()
            assert line, f"tidecast up exited early: {''.join(lines)}"
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        banner = "".join(lines)
        assert f"rtmp://127.0.0.1:{ports['rtmp']}/live" in banner
        analytics_url = f"http://127.0.0.1:{ports['analytics']}"
        assert analytics_url in banner
        credentials = json.loads((data_dir / "credentials.json").read_text())
        assert (data_dir / "credentials.json").stat().st_mode & 0o077 == 0
        assert credentials["token"] not in banner

        tenant = json.loads(cli(data_dir, "tenant", "create", "acme", "--json"))
        stream = json.loads(cli(data_dir, "stream", "create", "--tenant", "acme", "demo", "--json"))
        assert stream["tenant_id"] == tenant["id"]
        assert stream["ingest_url"] == (
            f"rtmp://127.0.0.1:{ports['rtmp']}/live/{stream['stream_key']}"
        )
        webrtc = f"http://127.0.0.1:{ports['webrtc']}"
        assert stream["whip_url"] == f"{webrtc}/whip"
        assert stream["whep_url"] == f"{webrtc}/whep/{stream['playback_id']}"
        listed = json.loads(cli(data_dir, "stream", "list", "--tenant", "acme", "--json"))
        assert [s["id"] for s in listed] == [stream["id"]]
        assert "stream_key" not in listed[0]
        human = cli(data_dir, "stream", "create", "--tenant", "acme", "second")
        assert "ffmpeg" in human and "/index.m3u8" in human
        assert f"{webrtc}/whip" in human and f"{webrtc}/whep/" in human

        push = subprocess.run(
            [
                require("ffmpeg"),
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine",
                "-t",
                "5",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-g",
                "60",
                "-c:a",
                "aac",
                "-f",
                "flv",
                stream["ingest_url"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert push.returncode == 0, push.stderr
        probe = subprocess.run(
            [
                require("ffprobe"),
                "-hide_banner",
                "-loglevel",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "json",
                stream["playback_url"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        codecs = {s["codec_name"] for s in json.loads(probe.stdout)["streams"]}
        assert codecs == {"h264", "aac"}

        # The edge shipped the publish to the data plane; the analytics API reports it.
        sessions: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while not sessions or not sessions[0].get("ended_at"):
            assert time.monotonic() < deadline, sessions
            time.sleep(0.5)
            answer = httpx.get(
                f"{analytics_url}/v1/tenants/{tenant['id']}/analytics/sessions",
                headers={"Authorization": f"Bearer {credentials['token']}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            sessions = answer.json()["sessions"]
        assert [(s["stream_id"], s["protocol"], s["width"]) for s in sessions] == [
            (stream["id"], "rtmp", 640)
        ]

        nodes = json.loads(cli(data_dir, "node", "list", "--json"))
        assert len(nodes) == 1 and nodes[0]["status"] == "active"
        rotated = json.loads(
            cli(data_dir, "stream", "rotate-key", stream["id"], "--tenant", "acme", "--json")
        )
        assert rotated["stream_key"] != stream["stream_key"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "stopped" in output
