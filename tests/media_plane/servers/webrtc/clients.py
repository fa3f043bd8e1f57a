"""Real aiortc WHIP/WHEP clients for the tests, speaking HTTP to the edge with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from media_plane.servers.webrtc._aiortc_seams import stop_consent_after_close

VIDEO_CLOCK = 90_000


class SyntheticVideo(MediaStreamTrack):
    """Frames of a fixed size at `fps`, each a flat colour that changes every frame."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for index, plane in enumerate(frame.planes):
            value = (self._count * 7) % 256 if index == 0 else 128
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = self._count * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class SyntheticAudio(MediaStreamTrack):
    """20 ms frames of a 440 Hz tone at 48 kHz."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._samples / 48_000
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tone = b"".join(
            int(8000 * math.sin(2 * math.pi * 440 * (self._samples + i) / 48_000)).to_bytes(
                2, "little", signed=True
            )
            for i in range(960)
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48_000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48_000)
        self._samples += 960
        return frame


def prefer(pc: RTCPeerConnection, kind: str, codec: str) -> None:
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind:
            caps = RTCRtpSender.getCapabilities(kind).codecs
            transceiver.setCodecPreferences(
                [c for c in caps if c.name.lower() in (codec.lower(), "rtx")]
            )


@dataclass
class Session:
    pc: RTCPeerConnection
    location: str
    response: httpx.Response


async def negotiate(
    http: httpx.AsyncClient, pc: RTCPeerConnection, url: str, token: str | None = None
) -> Session | httpx.Response:
    stop_consent_after_close(pc)
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = await http.post(url, content=pc.localDescription.sdp, headers=headers)
    if response.status_code != 201:
        return response
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return Session(pc, response.headers["Location"], response)


def peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@dataclass
class Received:
    sizes: list[tuple[int, int]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    first_at: float | None = None
    audio_frames: int = 0


async def consume_video(track: MediaStreamTrack, into: Received) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            now = time.monotonic()
            if into.first_at is None:
                into.first_at = now
            assert isinstance(frame, VideoFrame)
            into.sizes.append((frame.width, frame.height))
            into.times.append(now)


async def consume_audio(track: MediaStreamTrack, into: Received) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
            into.audio_frames += 1


@contextlib.asynccontextmanager
async def owned(
    *coroutines: Coroutine[Any, Any, None],
) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
