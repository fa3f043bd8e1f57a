"""WHIP and WHEP through the edge sidecar and the real control plane: stream keys and
playback tokens decided by EdgeControl, lifecycle and viewer events spooled as protos."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from tests.e2e.conftest import Platform
from tests.media_plane.servers.webrtc.clients import (
    Session,
    SyntheticAudio,
    SyntheticVideo,
    negotiate,
    peer,
    prefer,
)
from tests.media_plane.servers.webrtc.test_whip_whep import Viewer, frames_within

pytestmark = [pytest.mark.e2e, pytest.mark.media, pytest.mark.timeout(120)]


@pytest.mark.asyncio
async def test_whip_and_whep_through_the_sidecar(platform: Platform) -> None:
    tenant = await platform.create_tenant("acme")
    stream = await platform.create_stream(tenant, "studio", private_playback=True)
    base = platform.edge.webrtc_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        wrong = peer()
        wrong.addTransceiver(SyntheticVideo(), direction="sendonly")
        try:
            refused = await negotiate(http, wrong, "/whip/sk_not_a_key")
            assert not isinstance(refused, Session) and refused.status_code == 401
        finally:
            await wrong.close()

        pc = peer()
        pc.addTransceiver(SyntheticVideo(320, 240), direction="sendonly")
        pc.addTransceiver(SyntheticAudio(), direction="sendonly")
        prefer(pc, "video", "H264")
        session = await negotiate(http, pc, "/whip", stream["stream_key"])
        assert isinstance(session, Session), session
        viewer = Viewer()
        try:
            for _ in range(100):
                listed = await platform.api.get(f"/v1/tenants/{tenant}/streams/{stream['id']}")
                if listed.json()["live"]:
                    break
                await asyncio.sleep(0.1)
            anonymous = Viewer()
            try:
                denied = await negotiate(http, anonymous.pc, f"/whep/{stream['playback_id']}")
                assert not isinstance(denied, Session) and denied.status_code == 401
            finally:
                await anonymous.close()
            issued = await platform.api.post(
                f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens",
                json={"ttl_seconds": 300},
            )
            issued.raise_for_status()
            token = issued.json()["token"]
            await asyncio.sleep(1.0)  # let the publisher's first keyframe through
            played = await negotiate(http, viewer.pc, f"/whep/{stream['playback_id']}", token)
            assert isinstance(played, Session), played
            await frames_within(viewer, 10, timeout=15)
            assert set(viewer.received.sizes) == {(320, 240)}
            assert (await http.delete(played.location)).status_code == 200
        finally:
            await viewer.close()
            await http.delete(session.location)
            await pc.close()

    assert platform.edge.engine is not None
    async with asyncio.timeout(10):
        while platform.edge.engine.registry.live():
            await asyncio.sleep(0.05)
    assert platform.edge.spool is not None
    events = []
    for record in platform.edge.spool.read(100_000):
        event = ev.Event()
        event.ParseFromString(record.payload)
        events.append(event)
    kinds = [e.WhichOneof("payload") for e in events]
    assert "stream_started" in kinds and "stream_ended" in kinds
    started = events[kinds.index("stream_started")]
    assert started.stream_started.protocol == common_pb2.MEDIA_PROTOCOL_WHIP
    viewer_started = events[kinds.index("viewer_started")]
    assert viewer_started.viewer_started.protocol == common_pb2.MEDIA_PROTOCOL_WHEP
    assert viewer_started.stream_id == stream["id"] and viewer_started.tenant_id == tenant
    assert "viewer_ended" in kinds

    # Sessions released show in the edge's metrics (heartbeats refresh them every second).
    admin = f"http://127.0.0.1:{platform.edge.admin_port}/metrics"
    expected = 'tidecast_edge_webrtc_sessions_ended{reason="client_ended"} 2.0'
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            metrics = (await client.get(admin)).text
            if expected in metrics:
                break
            await asyncio.sleep(0.1)
    assert expected in metrics
    assert 'tidecast_edge_webrtc_sessions{role="play"} 0.0' in metrics
    assert 'tidecast_edge_publish_denials_total{reason="invalid_key"} 1.0' in metrics
