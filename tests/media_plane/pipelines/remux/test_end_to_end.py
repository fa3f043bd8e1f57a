"""Publish into the registry, package, serve over HTTP, and play with the real ffmpeg."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from media_plane.media.hooks import PlayDecision, PlayDenial, PublishGrant
from media_plane.media.live_stream import StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.remux import HlsOutput
from media_plane.servers.hls import HlsHttpServer
from tests.media_plane.broadcasts import Broadcast

pytestmark = [pytest.mark.media, pytest.mark.asyncio]

TOKEN = "viewer-token"


class TokenHooks:
    def __init__(self) -> None:
        self.calls = 0

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        self.calls += 1
        if token == TOKEN:
            return PlayDecision(True)
        return PlayDecision(False, PlayDenial.TOKEN_REQUIRED)


@dataclass
class Edge:
    registry: StreamRegistry
    output: HlsOutput
    server: HlsHttpServer
    hooks: TokenHooks

    def url(self, playback_id: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/hls/{playback_id}/index.m3u8?token={TOKEN}"

    def publish(self, media: Broadcast, stream_id: str, playback_id: str) -> None:
        stream = self.registry.start(
            PublishGrant(stream_id, playback_id), MediaProtocol.RTMP, "127.0.0.1"
        )
        stream.set_tracks(media.video, media.audio)
        for packet in media.packets:
            stream.push(packet)
        self.registry.finish(stream)

    async def until_ended(self, playback_id: str, segments: int) -> bytes:
        async with asyncio.timeout(30):
            while True:
                playlist = self.output.store.playlist(playback_id) or b""
                if playlist.endswith(b"#EXT-X-ENDLIST\n") and playlist.count(b".ts\n") == segments:
                    return playlist
                await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def edge() -> AsyncIterator[Edge]:
    registry = StreamRegistry()
    output = HlsOutput(registry)
    hooks = TokenHooks()
    server = HlsHttpServer(output.store, hooks, "127.0.0.1", 0)
    await output.start()
    await server.start()
    try:
        yield Edge(registry, output, server, hooks)
    finally:
        await server.stop()
        await output.stop()


async def _run(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _sequence_numbers(playlist: bytes) -> list[int]:
    text = playlist.decode()
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    names = [line for line in text.splitlines() if line.endswith(".ts")]
    numbers = [int(name.split("-")[0]) for name in names]
    assert numbers[0] == first
    return numbers


async def test_ffmpeg_plays_the_whole_ended_stream(
    edge: Edge, broadcast: Callable[..., Broadcast], ffmpeg: str, ffprobe: str
) -> None:
    media = broadcast(7.0, width=640, height=360)
    edge.publish(media, "stream-1", "pb1")
    playlist = await edge.until_ended("pb1", segments=4)
    assert _sequence_numbers(playlist) == [0, 1, 2, 3]

    code, out, err = await _run(
        ffprobe,
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,codec_name,width,height,sample_rate,channels",
        "-of",
        "json",
        edge.url("pb1"),
    )
    assert code == 0, err
    streams = {s["codec_type"]: s for s in json.loads(out)["streams"]}
    assert (streams["video"]["codec_name"], streams["video"]["width"]) == ("h264", 640)
    assert streams["video"]["height"] == 360
    assert (streams["audio"]["codec_name"], streams["audio"]["sample_rate"]) == ("aac", "48000")

    code, _, err = await _run(
        ffmpeg, "-nostdin", "-v", "warning", "-i", edge.url("pb1"), "-f", "null", "-"
    )
    assert code == 0, err
    assert err.strip() == ""

    # Decode everything and count what came out: all 7 s of video at 30 fps.
    code, out, err = await _run(
        ffprobe,
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "json",
        edge.url("pb1"),
    )
    assert code == 0, err
    assert int(json.loads(out)["streams"][0]["nb_read_frames"]) == 7 * 30
    assert edge.server.stats.take_bytes_out()["pb1"] > sum(
        len(edge.output.store.segment("pb1", n) or b"")
        for n in playlist.decode().splitlines()
        if n.endswith(".ts")
    )


async def test_ffmpeg_plays_across_a_publisher_reconnect(
    edge: Edge, broadcast: Callable[..., Broadcast], ffmpeg: str
) -> None:
    media = broadcast(3.0)
    edge.publish(media, "stream-1", "pb2")
    await edge.until_ended("pb2", segments=2)
    edge.publish(media, "stream-1", "pb2")
    playlist = await edge.until_ended("pb2", segments=4)
    assert _sequence_numbers(playlist) == [0, 1, 2, 3]
    assert playlist.count(b"#EXT-X-DISCONTINUITY\n") == 1

    code, _, err = await _run(
        ffmpeg, "-nostdin", "-v", "warning", "-i", edge.url("pb2"), "-f", "null", "-"
    )
    assert code == 0, err
    assert err.strip() == ""


async def test_players_without_a_token_are_refused(
    edge: Edge, broadcast: Callable[..., Broadcast], ffprobe: str
) -> None:
    edge.publish(broadcast(3.0), "stream-1", "pb3")
    await edge.until_ended("pb3", segments=2)
    url = edge.url("pb3").split("?")[0]
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).status_code == 401
    code, _, err = await _run(ffprobe, "-v", "error", url)
    assert code != 0
    assert "401" in err
