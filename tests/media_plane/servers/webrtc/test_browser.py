"""Headless Chromium as publisher and viewer: WHIP from a page's fake camera, WHEP into a
page's <video>, frames counted with getStats(), screenshots kept as test artifacts."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import aioice.ice
import httpx
import pytest
from playwright.async_api import Browser, Page

from media_plane.edge_engine import StreamEnded
from media_plane.protocols.hls.playlist import nearest_integer
from tests.e2e.media import probe, publisher, wait_for_playlist
from tests.media_plane.servers.webrtc.browser import CHROMIUM, chromium, page_server
from tests.media_plane.webrtc_edge import GOOD_KEY, PLAYBACK_ID, Edge

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.media,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="function"),
    pytest.mark.timeout(120),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed"),
]


async def open_page(browser: Browser, pages: str, name: str) -> Page:
    page = await browser.new_page()
    await page.goto(f"{pages}/{name}")
    return page


async def wait_decoded(page: Page, frames: int, timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            stats: dict[str, Any] = await page.evaluate("inbound()")
            video = stats.get("video")
            if video and video["framesDecoded"] >= frames:
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
        first = stats["video"]["framesDecoded"]
        await asyncio.sleep(1.0)
        stats = await wait_decoded(viewer, first + 10)
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


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
async def test_rtmp_publish_plays_in_chromium_over_whep(edge: Edge, tmp_path: Path) -> None:
    url = f"{edge.rtmp_base}/{GOOD_KEY}"
    async with (
        publisher(url, seconds=40, size="640x360", rate=30, bitrate="800k"),
        page_server() as pages,
        chromium() as browser,
    ):
        await wait_fanout(edge)
        viewer = await open_page(browser, pages, "whep.html")
        started = asyncio.get_running_loop().time()
        await viewer.evaluate("(u) => play(u)", edge_url(edge, f"/whep/{PLAYBACK_ID}"))
        stats = await wait_decoded(viewer, 1)
        first_frame_s = asyncio.get_running_loop().time() - started
        stats = await wait_decoded(viewer, stats["video"]["framesDecoded"] + 30)
        assert (stats["video"]["width"], stats["video"]["height"]) == (640, 360)
        assert stats["video"]["mimeType"].lower() == "video/h264"
        assert stats["audio"] and stats["audio"]["samples"] > 0
        # The GOP cache gives a joining viewer a picture at once (loose bound for CI).
        assert first_frame_s < 3.0
        await viewer.screenshot(path=str(tmp_path / "rtmp-whep.png"))
        webrtc = edge.engine.webrtc
        assert webrtc is not None
        assert (webrtc.stats().video_encoders, webrtc.stats().audio_transcoders) == (0, 1)
        await viewer.close()


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe is not installed")
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
