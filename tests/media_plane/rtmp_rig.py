"""Fixtures for the RTMP tests: engine hooks and readers that record, a server rig on
loopback, a raw client that can misbehave on purpose, and real ffmpeg publishers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest_asyncio

from media_plane.media import AudioTrack, MediaPacket, VideoTrack
from media_plane.media.events import EngineEvent
from media_plane.media.hooks import (
    PlayDecision,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.media.live_stream import LiveStream, StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.chunks import (
    COMMAND_AMF0,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.servers.rtmp.limits import RtmpLimits
from media_plane.servers.rtmp.server import RtmpServer
from media_plane.servers.rtmp.session import SessionOptions
from tests.harness.binaries import require

DATA = Path(__file__).parent / "protocols" / "rtmp" / "data"

EventT = TypeVar("EventT", bound=EngineEvent)


class Hooks:
    """Allows the keys it knows, denies the rest; can be slow or broken on demand."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.denials: dict[str, PublishDenial] = {}
        self.events: list[EngineEvent] = []
        self.asked: list[tuple[str, str, str]] = []
        self.delay = 0.0
        self.broken = False

    async def authorize_publish(
        self, key: str, protocol: MediaProtocol, client_addr: str
    ) -> PublishDecision:
        self.asked.append((key, protocol, client_addr))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.broken:
            raise RuntimeError("control plane unreachable")
        if key in self.denials:
            return PublishDecision.deny(self.denials[key], f"{key} is refused")
        stream_id = self.keys.get(key)
        if stream_id is None:
            return PublishDecision.deny(PublishDenial.INVALID_KEY, "unknown key")
        return PublishDecision.allow(PublishGrant(stream_id, f"pb-{stream_id}"))

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        return PlayDecision(allowed=True)

    def emit(self, event: EngineEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[EventT]) -> list[EventT]:
        """The events emitted of one kind, typed as that kind."""
        return [event for event in self.events if isinstance(event, kind)]


class Recorder:
    """A stream reader that keeps everything it is given."""

    def __init__(self) -> None:
        self.tracks: list[tuple[VideoTrack | None, AudioTrack | None]] = []
        self.packets: list[MediaPacket] = []
        self.ends = 0

    @property
    def video(self) -> VideoTrack | None:
        return self.tracks[-1][0] if self.tracks else None

    @property
    def audio(self) -> AudioTrack | None:
        return self.tracks[-1][1] if self.tracks else None

    @property
    def ended(self) -> bool:
        return self.ends > 0

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.tracks.append((video, audio))

    def on_packet(self, packet: MediaPacket) -> None:
        self.packets.append(packet)

    def on_end(self) -> None:
        self.ends += 1


class CountingRegistry(StreamRegistry):
    """The real registry, counting how often each stream is finished."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[tuple[str, str | None]] = []

    def finish(self, stream: LiveStream, reason: str | None = None) -> None:
        self.finished.append((stream.session_id, reason))
        super().finish(stream, reason)


class Rig:
    """A server on loopback with short timeouts, recording every stream it starts;
    `limits` overrides any other `RtmpLimits` field."""

    def __init__(
        self,
        *,
        options: SessionOptions | None = None,
        **limits: Any,
    ) -> None:
        self.registry = CountingRegistry()
        self.hooks = Hooks({"good": "s1", "other": "s2"})
        self.recorders: dict[str, list[Recorder]] = {}
        self.streams: list[LiveStream] = []
        self.registry.on_start(self._started)
        self.server = RtmpServer(
            self.registry,
            self.hooks,
            "127.0.0.1",
            0,
            limits=RtmpLimits(
                **{
                    "handshake_timeout_s": 1.0,
                    "idle_timeout_s": 2.0,
                    "publish_timeout_s": 3.0,
                    "max_connections": 100,
                    **limits,
                }
            ),
            options=options,
        )

    def _started(self, stream: LiveStream) -> None:
        recorder = Recorder()
        self.recorders.setdefault(stream.stream_id, []).append(recorder)
        self.streams.append(stream)
        stream.attach(recorder)

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.server.port}/live/{key}"


RigFactory = Callable[..., Awaitable[Rig]]


@pytest_asyncio.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    """Starts rigs; stops them at the end and checks that nothing was left running."""
    rigs: list[Rig] = []

    async def make(**kwargs: Any) -> Rig:
        rig = Rig(**kwargs)
        await rig.server.start()
        rigs.append(rig)
        return rig

    try:
        yield make
    finally:
        for rig in rigs:
            await rig.server.stop()
            assert rig.server.sessions == 0
        current = asyncio.current_task()
        running = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        assert not running, f"tasks left running: {running}"


@pytest_asyncio.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class RawClient:
    """Just enough of an RTMP client to misbehave on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkReader()
        self.chunk_size = 128
        self.messages: list[RtmpMessage] = []

    @classmethod
    async def connect(cls, port: int, source: str | None = None) -> RawClient:
        """`source`: the loopback address to connect from (127.0.0.0/8), for per-address
        limits."""
        local = (source, 0) if source is not None else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        return cls(reader, writer)

    async def handshake(self) -> None:
        self.writer.write(b"\x03" + os.urandom(1536))
        await self.reader.readexactly(1 + 1536 * 2)
        self.writer.write(os.urandom(1536))

    def send(self, type_id: int, payload: bytes, *, stream_id: int = 0, csid: int = 3) -> None:
        message = RtmpMessage(type_id, stream_id, 0, payload, csid=csid)
        self.writer.write(encode_message(message, self.chunk_size))

    def command(self, *values: amf0.AmfValue, stream_id: int = 0) -> None:
        self.send(COMMAND_AMF0, amf0.encode(*values), stream_id=stream_id)

    async def start_publish(self, key: str) -> None:
        await self.handshake()
        self.command("connect", 1.0, {"app": "live"})
        self.command("createStream", 2.0, None)
        self.command("publish", 3.0, None, key, "live", stream_id=1)

    async def closed_within(self, seconds: float) -> bool:
        """True when the server closes the connection within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def read_messages(
        self, until: Callable[[list[RtmpMessage]], bool], timeout: float = 5.0
    ) -> list[RtmpMessage]:
        """Reads until `until(messages)` holds, the server closes, or `timeout` passes."""
        try:
            async with asyncio.timeout(timeout):
                while not until(self.messages):
                    data = await self.reader.read(65536)
                    if not data:
                        break
                    self.messages += self.chunks.feed(data)
        except (TimeoutError, ConnectionError):
            pass
        return self.messages

    async def statuses(self, *, until: str | None = None, timeout: float = 5.0) -> list[str]:
        """The `code` of every status object received (reads until `until` or close)."""

        def codes(messages: list[RtmpMessage]) -> list[str]:
            found = []
            for message in messages:
                if message.type_id == COMMAND_AMF0:
                    for value in amf0.decode_all(message.payload):
                        if isinstance(value, dict) and "code" in value:
                            found.append(str(value["code"]))
            return found

        await self.read_messages(lambda m: until is not None and until in codes(m), timeout)
        return codes(self.messages)

    def close(self) -> None:
        self.writer.close()


class Publishers:
    """Real ffmpeg publishers, all killed when the test ends."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(
        self, url: str, seconds: float, *extra: str, size: str = "320x240"
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            require("ffmpeg"),
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-c:a",
            "aac",
            *extra,
            "-f",
            "flv",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


@pytest_asyncio.fixture
async def publishers() -> AsyncIterator[Publishers]:
    publishers = Publishers()
    try:
        yield publishers
    finally:
        await publishers.close()
