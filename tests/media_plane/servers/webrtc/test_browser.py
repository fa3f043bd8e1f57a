"""Headless Chromium as publisher and viewer: WHIP from a page's fake camera, WHEP into a
page's <video>, frames counted with getStats(), screenshots kept as test artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aioice.ice
import httpx
import pytest
from playwright.async_api import Browser, Page

from media_plane.edge_engine import StreamEnded
from media_plane.protocols.hls.playlist import nearest_integer
from tests.e2e.media import probe, publisher, wait_for_playlist
from tests.media_plane.servers.webrtc.browser import chromium, page_server
from tests.media_plane.webrtc_edge import GOOD_KEY, PLAYBACK_ID, Edge

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.media,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(120),
    pytest.mark.usefixtures("chromium_path"),
]


async def open_page(browser: Browser, pages: str, name: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{pages}/{name}")
    return page


async def wait_decoded(
    page: Page, frames: int, timeout: float = 20.0, *, counted: str = "framesDecoded"
) -> dict[str, Any]:
    """Waits until the page's video has decoded `frames` (of the `counted` kind)."""
    async with asyncio.timeout(timeout):
        while True:
            stats: dict[str, Any] = await page.evaluate("inbound()")
            video = stats.get("video")
            if video and video[counted] >= frames:
                return stats
            await asyncio.sleep(0.2)


async def wait_fanout(edge: Edge) -> None:
    def ready() -> bool:
        fanout = edge.engine.webrtc.fanout(PLAYBACK_ID) if edge.engine.webrtc else None
        return fanout is not None and fanout.video is not None

    await edge.wait_for(ready, timeout=20)


def edge_url(edge: Edge, path: str) -> str:
    return f"http://127.0.0.1:{edge.engine.webrtc_port}{path}"


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_chromium_publishes_over_whip_and_another_page_plays_over_whep(
    edge: Edge, codec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed tab says nothing; the edge notices by RFC 7675 consent checks, shortened
    # here from aioice's 6 checks 5 s apart.
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.5)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 4)
    async with page_server() as pages, chromium() as browser:
        studio = await open_page(browser, pages, "whip.html")
        location = await studio.evaluate(
            "([u, k, c]) => publish(u, k, c)", [edge_url(edge, "/whip"), GOOD_KEY, codec]
        )
        assert location.startswith("/whip/session/")
        await wait_fanout(edge)
        fanout = edge.engine.webrtc.fanout(PLAYBACK_ID)  # type: ignore[union-attr]
        assert fanout is not None and fanout.video is not None
        assert fanout.video.codec.value == codec.lower()
        assert (fanout.video.width, fanout.video.height) == (640, 480)

        viewer = await open_page(browser, pages, "whep.html")
        await viewer.evaluate("(u) => play(u)", edge_url(edge, f"/whep/{PLAYBACK_ID}"))
        stats = await wait_decoded(viewer, 20)
        stats = await wait_decoded(viewer, stats["video"]["framesDecoded"] + 10)
        assert (stats["video"]["width"], stats["video"]["height"]) == (640, 480)
        assert stats["video"]["mimeType"].lower() == f"video/{codec.lower()}"
        assert stats["audio"] and stats["audio"]["samples"] > 0
        shot = tmp_path / f"whep-{codec}.png"
        await viewer.screenshot(path=str(shot))
        assert shot.stat().st_size > 5_000

        # The viewer's tab closes; the edge lets go of it.
        # (With aioice's own timers, 6 checks 5 s apart, this took 30 s here.)
        await viewer.close()
        # The session leaves the count before its peer connection has closed and its end
        # event is emitted: wait for both.
        await edge.wait_for(
            lambda: (
                edge.engine.webrtc.stats().viewers == 0  # type: ignore[union-attr]
                and any(e.kind.value == "viewer_ended" for e in edge.hooks.events)
            ),
            timeout=10,
        )
        ended = [e for e in edge.hooks.events if e.kind.value == "viewer_ended"]
        assert len(ended) == 1
        await studio.close()
        await edge.wait_for(lambda: not edge.engine.registry.live(), timeout=10)
        assert [e.reason for e in edge.hooks.of(StreamEnded)] == ["publisher_lost"]


@pytest.mark.usefixtures("ffmpeg")
async def test_rtmp_publish_plays_in_chromium_over_whep(edge: Edge, tmp_path: Path) -> None:
    url = f"{edge.rtmp_base}/{GOOD_KEY}"
    # One keyframe every GOP_S: a viewer that joins after the first can decode before
    # the next only from the edge's GOP cache.
    gop_s = 15.0
    async with (
        publisher(url, seconds=40, size="640x360", rate=30, bitrate="800k", gop_s=gop_s),
        page_server() as pages,
        chromium() as browser,
    ):
        await wait_fanout(edge)
        # The fan-out has the first keyframe, the next comes up to gop_s later (the first
        # may reach the fan-out a few seconds after ffmpeg encoded it): the cache's
        # keyframe decodes well inside half a GOP of joining, the next one well after.
        half_a_gop_later = asyncio.get_running_loop().time() + gop_s / 2
        viewer = await open_page(browser, pages, "whep.html")
        await viewer.evaluate("(u) => play(u)", edge_url(edge, f"/whep/{PLAYBACK_ID}"))
        # (Chromium decodes the frames after a missed keyframe too: its first keyframe
        # is what tells the cache's GOP from the next one.)
        stats = await wait_decoded(viewer, 1, timeout=gop_s + 5, counted="keyFramesDecoded")
        assert asyncio.get_running_loop().time() < half_a_gop_later, (
            "the first keyframe decoded was the publisher's next, not the GOP cache's"
        )
        stats = await wait_decoded(viewer, stats["video"]["framesDecoded"] + 30)
        assert (stats["video"]["width"], stats["video"]["height"]) == (640, 360)
        assert stats["video"]["mimeType"].lower() == "video/h264"
        assert stats["audio"] and stats["audio"]["samples"] > 0
        await viewer.screenshot(path=str(tmp_path / "rtmp-whep.png"))
        webrtc = edge.engine.webrtc
        assert webrtc is not None
        assert (webrtc.stats().video_encoders, webrtc.stats().audio_transcoders) == (0, 1)
        await viewer.close()


@pytest.mark.usefixtures("ffprobe")
async def test_chromium_whip_publish_is_readable_as_hls_by_ffmpeg(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.5)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 4)
    playlist_url = f"{edge.hls_base}/hls/{PLAYBACK_ID}/index.m3u8"
    async with page_server() as pages, chromium() as browser:
        studio = await open_page(browser, pages, "whip.html")
        await studio.evaluate(
            "([u, k, c]) => publish(u, k, c)", [edge_url(edge, "/whip"), GOOD_KEY, "VP8"]
        )
        async with httpx.AsyncClient() as client:
            await wait_for_playlist(client, playlist_url, timeout=30, segments=3)
            # The tab closes; the publish ends and the playlist with it, so ffprobe can
            # read the whole recording.
            await studio.close()
            playlist = await wait_for_playlist(client, playlist_url, timeout=20, ended=True)
    durations = [
        float(line.split(":")[1].rstrip(","))
        for line in playlist.text.splitlines()
        if line.startswith("#EXTINF")
    ]
    # Every segment within TARGETDURATION 2, the last (still open at the end) aside.
    assert all(nearest_integer(d) <= 2 for d in durations[:-1]), durations
    result = await probe(playlist_url)
    streams = {s["codec_type"]: s for s in result["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 480)
    assert int(streams["video"]["nb_read_frames"]) > 30
    assert streams["audio"]["codec_name"] == "aac"
