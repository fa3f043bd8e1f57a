"""End to end through every plane: ffmpeg publishes over RTMP to an edge, an HLS reader
watches, the edge ships its events to the data plane, and the analytics API then reports
the publish session, the viewer and the bytes that match what the test did."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from control_plane.app import open_database
from data_plane.serve import ALL_ROLES, running_data_plane
from data_plane.warehouse.base import Warehouse
from edge_sidecar.settings import EdgeSidecarSettings
from edge_sidecar.supervisor import EdgeSidecar
from tests.control_plane.running import ControlPlane, make_settings, running_control_plane
from tests.data_plane.conftest import data_settings
from tests.e2e.media import publisher
from tests.harness.binaries import needs_ffmpeg

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.media, needs_ffmpeg]


@dataclass
class Everything:
    control: ControlPlane
    edge: EdgeSidecar
    analytics_url: str


@pytest_asyncio.fixture
async def everything(tmp_path: Path, chdb_warehouse: Warehouse) -> AsyncIterator[Everything]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'control.db'}"
    async with open_database(make_settings(url), migrate=True):
        pass
    async with running_control_plane(make_settings(url)) as control:
        settings = data_settings(control, ingest_max_wait_ms=50)
        async with running_data_plane(settings, ALL_ROLES, warehouse=chdb_warehouse) as plane:
            cluster = await control.cluster()
            edge = EdgeSidecar(
                EdgeSidecarSettings(
                    control_target=control.grpc_target,
                    enroll_token=SecretStr(await control.enrollment_token(cluster)),
                    ingress_target=f"127.0.0.1:{plane.ingress_port}",
                    state_dir=tmp_path / "edge",
                    rtmp_port=0,
                    http_port=0,
                    admin_port=0,
                    health_interval_s=1.0,
                    heartbeat_interval_s=1.0,
                    viewer_idle_s=2.0,
                    viewer_progress_s=1.0,
                )
            )
            await edge.start()
            try:
                yield Everything(control, edge, f"http://127.0.0.1:{plane.api_port}")
            finally:
                await edge.stop()


async def watch(playlist_url: str, seconds: float) -> int:
    """Reads the playlist and every new segment like a player; returns body bytes read."""
    received = 0
    fetched: set[str] = set()
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with httpx.AsyncClient(timeout=10, headers={"User-Agent": "e2e-player"}) as client:
        while loop.time() < end:
            playlist = await client.get(playlist_url)
            if playlist.status_code == 200:
                received += len(playlist.content)
                for name in re.findall(r"^(?!#)(\S+)$", playlist.text, re.MULTILINE):
                    if name not in fetched:
                        segment = await client.get(httpx.URL(playlist_url).join(name))
                        assert segment.status_code == 200
                        received += len(segment.content)
                        fetched.add(name)
            await asyncio.sleep(0.5)
    assert fetched, "the player never got a segment"
    return received


async def eventually(
    api: httpx.AsyncClient, path: str, check: Any, timeout_s: float = 30.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        response = await api.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if check(body):
            return body
        if loop.time() > deadline:
            raise AssertionError(f"{path}: {body}")
        await asyncio.sleep(0.25)


async def test_a_real_publish_and_view_become_matching_analytics(everything: Everything) -> None:
    control = everything.control
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    rtmp_url = f"{everything.edge.rtmp_url}/{stream['stream_key']}"
    playlist_url = f"{everything.edge.http_url}/hls/{stream['playback_id']}/index.m3u8"
    async with publisher(rtmp_url, seconds=8, size="640x360", bitrate="800k") as push:
        await asyncio.sleep(3)
        body_bytes = await watch(playlist_url, 4)
        assert await push.wait(30) == 0, await push.stderr()

    token = await control.token(tenant, "read")
    base = f"/v1/tenants/{tenant}/analytics"
    async with httpx.AsyncClient(
        base_url=everything.analytics_url, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        sessions = await eventually(
            api, f"{base}/sessions", lambda b: b["sessions"] and b["sessions"][0]["ended_at"]
        )
        (session,) = sessions["sessions"]
        assert session["stream_id"] == stream["id"]
        assert (session["protocol"], session["video_codec"], session["audio_codec"]) == (
            "rtmp",
            "h264",
            "aac",
        )
        assert (session["width"], session["height"]) == (640, 360)
        assert 6_000 <= session["duration_ms"] <= 15_000
        assert session["bytes_in"] > 8 * 800_000 // 8 // 2

        # The viewer's session ends after the edge's idle time; its bytes then add up.
        assert everything.edge.engine is not None
        edge_bytes_out = everything.edge.engine.stats().bytes_out
        usage = await eventually(
            api,
            f"{base}/usage",
            lambda b: b["days"] and b["days"][0]["egress_bytes"] >= body_bytes,
        )
        (day,) = usage["days"]
        assert day["stream_id"] == stream["id"]
        # Response heads count as egress too: the edge's own byte counter is the reference.
        assert day["egress_bytes"] == edge_bytes_out
        assert body_bytes <= day["egress_bytes"] <= body_bytes + 1024 * 40
        assert 0.04 <= day["viewer_minutes"] <= 0.2
        unique = (await api.get(f"{base}/viewers/unique")).json()
        assert unique["unique_viewers"] == 1
        # The series trails the events by the ingest's count interval.
        series = await eventually(api, f"{base}/viewers/timeseries", lambda b: max(b["viewers"]))
        assert max(series["viewers"]) == 1
        health = (await api.get(f"{base}/ingest-health", params={"stream_id": stream["id"]})).json()
        assert health["points"] and all(p["fps"] > 20 for p in health["points"])
        assert all(p["bitrate_bps"] > 200_000 for p in health["points"])
