"""Across protocols: an ffmpeg RTMP publish played over WHEP (H.264 passed through, AAC
transcoded to Opus once per stream), and a WHIP publish packaged as HLS."""

from __future__ import annotations

import asyncio

import pytest

from media_plane.edge_engine import ViewerStarted
from media_plane.protocols.hls.playlist import nearest_integer
from tests.e2e.media import publisher
from tests.media_plane.servers.webrtc.test_whip_whep import Viewer, frames_within
from tests.media_plane.webrtc_edge import GOOD_KEY, PLAYBACK_ID, Edge

pytestmark = [
    pytest.mark.media,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.usefixtures("ffmpeg"),
]


async def test_rtmp_publish_plays_over_whep_without_a_video_encoder(edge: Edge) -> None:
    url = f"{edge.rtmp_base}/{GOOD_KEY}"
    async with publisher(url, seconds=30, size="640x360", rate=30, bitrate="800k"):
        sessions = edge.engine.webrtc
        assert sessions is not None

        def video_ready() -> bool:
            fanout = sessions.fanout(PLAYBACK_ID)
            return fanout is not None and fanout.video is not None

        await edge.wait_for(video_ready, timeout=15)
        viewers = [Viewer() for _ in range(3)]
        try:
            for viewer in viewers:
                result = await viewer.play(edge)
                assert not hasattr(result, "status_code"), result.text
            for viewer in viewers:
                await frames_within(viewer, 20, timeout=15)
            await asyncio.sleep(1.0)
            for viewer in viewers:
                assert set(viewer.received.sizes) == {(640, 360)}
                assert viewer.received.audio_frames > 10
            stats = sessions.stats()
            # One Opus encoder for the stream, whatever the number of viewers; no video one.
            assert (stats.viewers, stats.video_encoders, stats.audio_transcoders) == (3, 0, 1)
            fanout = sessions.fanout(PLAYBACK_ID)
            assert fanout is not None and fanout.transcoders_started == 1
            # Each frame is packetized once for all three viewers, and each viewer was
            # sent its own copy.
            assert 0 < fanout.frames_packetized <= fanout.frames_in
            outputs = [
                s.viewer.video
                for s in sessions._sessions.values()
                if s.viewer is not None and s.viewer.video is not None
            ]
            assert len(outputs) == 3 and all(o.frames >= 20 for o in outputs)
        finally:
            for viewer in viewers:
                await viewer.close()
        await edge.wait_for(lambda: sessions.stats().viewers == 0)
        # The last viewer gone, the stream's transcoder stops too.
        assert sessions.stats().audio_transcoders == 0
    started = next(e for e in edge.hooks.events if isinstance(e, ViewerStarted))
    assert started.protocol == "whep"


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_whip_publish_is_packaged_as_hls(edge: Edge, codec: str) -> None:
    from tests.e2e.media import probe, wait_for_playlist
    from tests.media_plane.servers.webrtc.test_whip_whep import publish

    session = await publish(edge, codec=codec)
    try:
        playlist_url = f"{edge.hls_base}/hls/{PLAYBACK_ID}/index.m3u8"
        import httpx

        async with httpx.AsyncClient() as client:
            playlist = await wait_for_playlist(client, playlist_url, timeout=20, segments=2)
        durations = [
            float(line.split(":")[1].rstrip(","))
            for line in playlist.text.splitlines()
            if line.startswith("#EXTINF")
        ]
        # Segments hold the 2 s target, whatever the publisher's keyframes: H.264 passes
        # through with keyframes requested every target (PLI), and a keyframe that comes
        # early is cut at when waiting for the next would overrun the target; VP8 is
        # transcoded with IDRs forced every target.
        assert all(nearest_integer(d) <= 2 for d in durations), durations
        assert "#EXT-X-TARGETDURATION:2\n" in playlist.text
        result = await probe(f"{edge.hls_base}/hls/{PLAYBACK_ID}/{playlist.segments[0]}")
        streams = {s["codec_type"]: s for s in result["streams"]}
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
        assert streams["audio"]["codec_name"] == "aac"
    finally:
        await edge.http.delete(session.location)
        await session.pc.close()
