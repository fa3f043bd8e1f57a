"""What the WebRTC benchmarks share: aiortc publishers and viewers speaking WHIP/WHEP,
frames that carry their index in pixels, a viewer that counts packets without decoding,
and the edge in its own process."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import free_port
from media_plane.servers.webrtc._aiortc_seams import offer_host_addresses

ROOT = Path(__file__).resolve().parent.parent
VIDEO_CLOCK = 90_000
GRID = 4  # a GRID x GRID board of black/white blocks carries a 16-bit frame index
LOW, HIGH = 16, 235


def stamped_frame(index: int, width: int, height: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = bytearray(frame.planes[0].buffer_size)
    stride = frame.planes[0].line_size
    bw, bh = width // GRID, height // GRID
    for bit in range(GRID * GRID):
        value = HIGH if (index >> bit) & 1 else LOW
        x0, y0 = (bit % GRID) * bw, (bit // GRID) * bh
        row = bytes([value]) * bw
        for y in range(y0, y0 + bh):
            luma[y * stride + x0 : y * stride + x0 + bw] = row
    frame.planes[0].update(bytes(luma))
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * plane.buffer_size)
    return frame


def read_stamp(frame: av.VideoFrame) -> int:
    plane = frame.reformat(format="yuv420p").planes[0]
    data = bytes(plane)
    stride = plane.line_size
    bw, bh = frame.width // GRID, frame.height // GRID
    index = 0
    for bit in range(GRID * GRID):
        x = (bit % GRID) * bw + bw // 2
        y = (bit // GRID) * bh + bh // 2
        if data[y * stride + x] > (LOW + HIGH) // 2:
            index |= 1 << bit
    return index


class StampedVideo(MediaStreamTrack):
    """Frames at `fps` carrying their index; `sent[index]` is when each left the track."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.sent: dict[int, float] = {}
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self._count & 0xFFFF
        frame = stamped_frame(index, self.width, self.height)
        frame.pts = self._count * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        self.sent[index] = time.monotonic()
        return frame


def loopback_peer() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def prefer(pc: RTCPeerConnection, kind: str, codec: str) -> None:
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind:
            caps = RTCRtpSender.getCapabilities(kind).codecs
            transceiver.setCodecPreferences(
                [c for c in caps if c.name.lower() in (codec.lower(), "rtx")]
            )


async def exchange(http: httpx.AsyncClient, pc: RTCPeerConnection, url: str) -> str:
    """POST the offer, apply the answer; returns the session's Location."""
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(
        url, content=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
    )
    if response.status_code != 201:
        raise RuntimeError(f"{url}: {response.status_code} {response.text}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return response.headers["Location"]


@dataclass
class DecodedFrames:
    """Decoded video at a viewer: arrival time and stamp of every frame."""

    arrivals: list[tuple[float, int]] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)
    first: asyncio.Event = field(default_factory=asyncio.Event)


async def decode_into(track: MediaStreamTrack, into: DecodedFrames, stamps: bool) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            now = time.monotonic()
            into.sizes.add((frame.width, frame.height))
            into.arrivals.append((now, read_stamp(frame) if stamps else 0))
            into.first.set()


@dataclass
class Counted:
    video_frames: int = 0
    packets: int = 0
    bytes: int = 0


def count_without_decoding(pc: RTCPeerConnection, video_payload_types: set[int]) -> Counted:
    """After SRTP, count RTP packets and video frames (marker bit) and drop them: no
    jitter buffer, no depacketization, no decode. Install before the connection starts."""
    counted = Counted()
    transports = {t.receiver.transport for t in pc.getTransceivers()}

    async def sink(data: bytes, arrival_time_ms: int) -> None:
        counted.packets += 1
        counted.bytes += len(data)
        if len(data) > 1 and data[1] & 0x80 and (data[1] & 0x7F) in video_payload_types:
            counted.video_frames += 1

    for transport in transports:
        setattr(transport, "_handle_rtp_data", sink)  # noqa: B010
    return counted


@dataclass
class DatagramCount:
    """RTP packets, bytes and video frames (marker bits) seen on a viewer's UDP socket."""

    video_payload_types: set[int] | None = None
    rtp: int = 0
    bytes: int = 0
    frames: int = 0


def count_datagrams(pc: RTCPeerConnection, video_types: set[int] | None = None) -> DatagramCount:
    """Count the SRTP packets reaching a connected peer connection and drop them before
    aiortc sees them: no SRTP unprotect, no RTP parsing, no coroutine per packet. The RTP
    header is in the clear under SRTP, so the marker bit and payload type can be read.
    STUN (consent freshness), DTLS and SRTCP still go to aioice and aiortc. Reaches into
    aioice's selected candidate pair: a load generator only, never edge code."""
    counted = DatagramCount(video_types)
    dtls = pc.getTransceivers()[0].receiver.transport
    pair = dtls.transport._connection._nominated[1]
    protocol = pair.protocol
    original = protocol.datagram_received

    def received(data: bytes, addr: tuple[str, int]) -> None:
        # RFC 7983: 128-191 is RTP/RTCP; RTCP packet types are 192-223 (RFC 5761).
        if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
            counted.rtp += 1
            counted.bytes += len(data)
            if data[1] & 0x80 and (video_types is None or (data[1] & 0x7F) in video_types):
                counted.frames += 1
            return
        original(data, addr)

    setattr(protocol, "datagram_received", received)  # noqa: B010
    return counted


def video_payload_types(answer_sdp: str) -> set[int]:
    types: set[int] = set()
    in_video = False
    for line in answer_sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=rtpmap:") and "rtx" not in line.lower():
            types.add(int(line.split(":")[1].split()[0]))
    return types


@dataclass
class EdgeProcess:
    process: subprocess.Popen[str]
    rtmp_port: int
    http_port: int
    webrtc_port: int

    @property
    def webrtc_base(self) -> str:
        return f"http://127.0.0.1:{self.webrtc_port}"

    @property
    def rtmp_base(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    def report(self) -> dict[str, Any]:
        import json
        import signal

        self.process.send_signal(signal.SIGUSR2)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        result: dict[str, Any] = json.loads(line)
        return result

    def reset(self) -> None:
        import signal

        self.process.send_signal(signal.SIGUSR1)


@contextlib.contextmanager
def edge_process(*extra: str) -> Iterator[EdgeProcess]:
    ports = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "webrtc_edge_server.py"),
            "--rtmp-port",
            str(ports[0]),
            "--http-port",
            str(ports[1]),
            "--webrtc-port",
            str(ports[2]),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"edge did not start: {line!r}")
        yield EdgeProcess(process, *ports)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_h264_source(path: Path, *, seconds: int, size: str, rate: int, bitrate: str) -> None:
    """An H.264 + AAC FLV with a 2 s GOP, encoded once; publishers replay it with -c copy."""
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", str(seconds),
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-g", str(rate * 2), "-keyint_min", str(rate * 2), "-sc_threshold", "0",
            "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate, "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k",
            "-f", "flv", str(path),
        ],
        check=True,
    )  # fmt: skip


@contextlib.contextmanager
def rtmp_replay(source: Path, url: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
            "-re", "-stream_loop", "-1", "-i", str(source), "-c", "copy", "-f", "flv", url,
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.asynccontextmanager
async def owned_tasks() -> AsyncIterator[Callable[[Any], asyncio.Task[Any]]]:
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        tasks.append(task)
        return task

    try:
        yield spawn
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = [
    "Counted",
    "DatagramCount",
    "DecodedFrames",
    "EdgeProcess",
    "StampedVideo",
    "count_datagrams",
    "count_without_decoding",
    "decode_into",
    "edge_process",
    "exchange",
    "loopback_peer",
    "make_h264_source",
    "offer_host_addresses",
    "owned_tasks",
    "prefer",
    "read_stamp",
    "rtmp_replay",
    "stamped_frame",
    "video_payload_types",
]
