"""A whole `tidecast up` run at DEBUG level, with every credential it issues used the way
clients use them (RTMP key in the URL, WHIP key in the path and as Bearer, playback token
in the query, API token as Bearer): none of them appears anywhere in its log."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_single_node import TIDECAST, cli, free_port
from tests.harness.binaries import needs_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.media, needs_ffmpeg, pytest.mark.timeout(180)]

_SERVICES = ("http", "grpc", "rtmp", "hls", "edge-admin", "ingress", "analytics", "webrtc")


def _push(url: str) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-f",
            "flv",
            url,
        ],
        capture_output=True,
        timeout=60,
    )


def test_no_key_or_token_reaches_the_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {name: free_port() for name in _SERVICES}
    log_path = tmp_path / "up.log"
    flags = [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [TIDECAST, "up", "--data-dir", str(data_dir), "--log-level", "DEBUG", *flags],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    secrets: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        admin_token = json.loads((data_dir / "credentials.json").read_text())["token"]
        secrets.append(admin_token)
        cli(data_dir, "tenant", "create", "acme", "--json")
        public = json.loads(cli(data_dir, "stream", "create", "--tenant", "acme", "pub", "--json"))
        private = json.loads(
            cli(data_dir, "stream", "create", "--tenant", "acme", "priv", "--private", "--json")
        )
        rotated = json.loads(
            cli(data_dir, "stream", "rotate-key", public["id"], "--tenant", "acme", "--json")
        )
        playback = json.loads(
            cli(data_dir, "stream", "playback-token", private["id"], "--tenant", "acme", "--json")
        )
        api_token = json.loads(cli(data_dir, "token", "create", "--tenant", "acme", "--json"))
        secrets += [
            public["stream_key"],
            private["stream_key"],
            rotated["stream_key"],
            playback["token"],
            api_token["token"],
        ]

        _push(rotated["ingest_url"])
        _push(public["ingest_url"])  # the old key: refused, and the refusal is logged
        webrtc = f"http://127.0.0.1:{ports['webrtc']}"
        sdp = {"Content-Type": "application/sdp"}
        malformed = b"v=0\r\nm=\r\n"
        in_path = httpx.post(
            f"{webrtc}/whip/{private['stream_key']}", content=malformed, headers=sdp
        )
        assert in_path.status_code == 400, in_path.text
        as_bearer = httpx.post(
            f"{webrtc}/whip",
            content=malformed,
            headers={**sdp, "Authorization": f"Bearer {rotated['stream_key']}"},
        )
        assert as_bearer.status_code == 400, as_bearer.text
        hls = f"http://127.0.0.1:{ports['hls']}/hls/{private['playback_id']}/index.m3u8"
        httpx.get(hls, params={"token": playback["token"]}, timeout=10)
        tenant_id = public["tenant_id"]
        analytics = httpx.get(
            f"http://127.0.0.1:{ports['analytics']}/v1/tenants/{tenant_id}/analytics/sessions",
            headers={"Authorization": f"Bearer {api_token['token']}"},
            timeout=10,
        )
        assert analytics.status_code == 200, analytics.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log_text = log_path.read_text()
    assert " DEBUG " in log_text  # the run logged at its most verbose
    leaked = [secret for secret in secrets if secret in log_text]
    assert leaked == [], [line for line in log_text.splitlines() if any(s in line for s in leaked)]
