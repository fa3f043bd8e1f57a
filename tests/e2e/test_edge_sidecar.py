"""The edge sidecar between the engine and the control plane: heartbeats, fail-closed
publishing, metrics and health."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from tests.e2e.conftest import Platform
from tests.e2e.media import fetch_playlist, publisher, wait_for_playlist
from tests.harness.binaries import needs_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.media, needs_ffmpeg, pytest.mark.timeout(180)]


@pytest.mark.asyncio
async def test_heartbeats_report_streams_viewers_and_bandwidth(platform: Platform) -> None:
    tenant = await platform.create_tenant("acme")
    stream = await platform.create_stream(tenant, "main")
    url = platform.hls_url(stream["playback_id"])
    async with (
        httpx.AsyncClient(timeout=10) as viewer,
        publisher(platform.rtmp_url(stream["stream_key"]), seconds=12, size="640x360"),
    ):
        playlist = await wait_for_playlist(viewer, url, timeout=15)
        segment = await viewer.get(url.replace("index.m3u8", playlist.segments[0]))
        assert segment.status_code == 200 and len(segment.content) > 10_000
        nodes: list[dict[str, object]] = []
        for _ in range(60):
            await viewer.get(url)
            nodes = (await platform.api.get("/v1/nodes")).json()["items"]
            if (
                nodes
                and nodes[0]["streams_carried"] == 1
                and nodes[0]["viewers"] == 1
                and (int(str(nodes[0]["bandwidth_in_bps"])) > 0)
            ):
                break
            await asyncio.sleep(0.25)
        [node] = nodes
        assert node["streams_carried"] == 1
        assert node["viewers"] == 1
        assert int(str(node["bandwidth_in_bps"])) > 100_000
        assert float(str(node["cpu_percent"])) >= 0
        assert int(str(node["memory_total_bytes"])) > 0
        listed = await platform.api.get(f"/v1/tenants/{tenant}/streams/{stream['id']}")
        assert listed.json()["live"] is True

        admin = f"http://127.0.0.1:{platform.edge.admin_port}"
        health = (await viewer.get(f"{admin}/healthz")).json()
        assert health["status"] == "ok" and health["control_plane_reachable"] is True
        metrics = (await viewer.get(f"{admin}/metrics")).text
        assert "tidecast_edge_streams 1.0" in metrics
        assert "tidecast_edge_bytes_out" in metrics

    assert platform.edge.spool is not None
    events = []
    for record in platform.edge.spool.read(100_000):
        event = ev.Event()
        event.ParseFromString(record.payload)
        events.append(event)
    viewers = [e for e in events if e.WhichOneof("payload") == "viewer_started"]
    assert len(viewers) == 1
    assert viewers[0].tenant_id == tenant and viewers[0].stream_id == stream["id"]
    assert viewers[0].viewer_started.protocol == common_pb2.MEDIA_PROTOCOL_HLS
    assert viewers[0].viewer_started.client_ip_hash and "127.0.0.1" not in str(viewers[0])


@pytest.mark.asyncio
async def test_control_plane_outage_refuses_new_publishes_but_keeps_live_ones(
    platform: Platform,
) -> None:
    tenant = await platform.create_tenant("acme")
    live = await platform.create_stream(tenant, "live")
    newcomer = await platform.create_stream(tenant, "new")
    url = platform.hls_url(live["playback_id"])
    async with (
        httpx.AsyncClient(timeout=10) as client,
        publisher(platform.rtmp_url(live["stream_key"]), seconds=25, size="640x360") as pub,
    ):
        before = await wait_for_playlist(client, url, timeout=15)
        await platform.control_grpc.stop(grace=None)
        async with publisher(
            platform.rtmp_url(newcomer["stream_key"]), seconds=5, size="320x240"
        ) as refused:
            assert await refused.wait(timeout=15) != 0
        await asyncio.sleep(4.5)
        after = await fetch_playlist(client, url)
        assert after is not None and not after.ended
        assert after.media_sequence + len(after.segments) > (
            before.media_sequence + len(before.segments)
        )
        assert pub.process.returncode is None, "a live stream was cut by the outage"
    denials = platform.edge.metrics.publish_denials.labels("unavailable")._value.get()
    assert denials >= 1
