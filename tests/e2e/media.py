"""Real ffmpeg broadcasters and players for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.harness.binaries import require


def publish_args(
    url: str,
    *,
    seconds: float,
    size: str = "1280x720",
    rate: int = 30,
    bitrate: str = "2500k",
    realtime: bool = True,
    gop_s: float = 2.0,
) -> list[str]:
    return [
        require("ffmpeg"),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        *(["-re"] if realtime else []),
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-g",
        str(round(rate * gop_s)),
        "-b:v",
        bitrate,
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-f",
        "flv",
        url,
    ]


@dataclass
class Publisher:
    process: asyncio.subprocess.Process

    async def wait(self, timeout: float) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)


@contextlib.asynccontextmanager
async def publisher(url: str, **kwargs: object) -> AsyncIterator[Publisher]:
    process = await asyncio.create_subprocess_exec(
        *publish_args(url, **kwargs),  # type: ignore[arg-type]
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Publisher(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def probe(url: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        require("ffprobe"),
        "-hide_banner",
        "-loglevel",
        "error",
        "-print_format",
        "json",
        "-show_streams",
        "-count_frames",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    result: dict[str, object] = json.loads(out)
    return result


async def decode(url: str) -> tuple[int, str]:
    """Decodes everything with ffmpeg; returns (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        require("ffmpeg"),
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostdin",
        "-i",
        url,
        "-f",
        "null",
        "-",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, err.decode(errors="replace")


@dataclass(frozen=True)
class Playlist:
    text: str

    @property
    def media_sequence(self) -> int:
        match = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", self.text)
        return int(match.group(1)) if match else 0

    @property
    def segments(self) -> list[str]:
        return [line for line in self.text.splitlines() if line and not line.startswith("#")]

    @property
    def ended(self) -> bool:
        return "#EXT-X-ENDLIST" in self.text


async def fetch_playlist(client: httpx.AsyncClient, url: str) -> Playlist | None:
    response = await client.get(url)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return Playlist(response.text)


async def wait_for_playlist(
    client: httpx.AsyncClient, url: str, *, timeout: float, segments: int = 1, ended: bool = False
) -> Playlist:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        playlist = await fetch_playlist(client, url)
        if (
            playlist is not None
            and len(playlist.segments) >= segments
            and (playlist.ended or not ended)
        ):
            return playlist
        if loop.time() > deadline:
            raise AssertionError(f"playlist at {url} not ready in {timeout}s: {playlist}")
        await asyncio.sleep(0.2)
