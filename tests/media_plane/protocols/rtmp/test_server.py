"""The RTMP server against the real ffmpeg and against hostile clients."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import struct
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from media_plane.engine.hooks import (
    EngineEvent,
    PlayDecision,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.engine.live_stream import LiveStream, StreamRegistry
from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.chunks import (
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.protocols.rtmp.server import RtmpServer

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


class Hooks:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.events: list[EngineEvent] = []

    async def authorize_publish(self, key: str, protocol: str, client_addr: str) -> PublishDecision:
        stream_id = self.keys.get(key)
        if stream_id is None:
            return PublishDecision.deny(PublishDenial.INVALID_KEY, "unknown key")
        return PublishDecision.allow(PublishGrant(stream_id, f"pb-{stream_id}"))

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str
    ) -> PlayDecision:
        return PlayDecision(allowed=True)

    def emit(self, event: EngineEvent) -> None:
        self.events.append(event)


class Recorder:
    def __init__(self) -> None:
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = None
        self.packets: list[MediaPacket] = []
        self.ended = False

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.video, self.audio = video, audio

    def on_packet(self, packet: MediaPacket) -> None:
        self.packets.append(packet)

    def on_end(self) -> None:
        self.ended = True


class Rig:
    def __init__(self) -> None:
        self.registry = StreamRegistry()
        self.hooks = Hooks({"good": "s1", "other": "s2"})
        self.recorders: dict[str, list[Recorder]] = {}
        self.streams: list[LiveStream] = []
        self.registry.on_start(self._started)
        self.server = RtmpServer(
            self.registry, self.hooks, "127.0.0.1", 0, handshake_timeout=1.0, idle_timeout=2.0
        )

    def _started(self, stream: LiveStream) -> None:
        recorder = Recorder()
        self.recorders.setdefault(stream.stream_id, []).append(recorder)
        self.streams.append(stream)
        stream.attach(recorder)

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.server.port}/live/{key}"


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.server.stop()


async def ffmpeg_publish(url: str, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
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
        "-f",
        "flv",
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class RawClient:
    """Just enough of an RTMP client to misbehave on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkReader()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def handshake(self) -> None:
        self.writer.write(b"\x03" + os.urandom(1536))
        await self.reader.readexactly(1 + 1536 * 2)
        self.writer.write(os.urandom(1536))

    def command(self, *values: object, stream_id: int = 0) -> None:
        message = RtmpMessage(COMMAND_AMF0, stream_id, 0, amf0.encode(*values), csid=3)
        self.writer.write(encode_message(message, 128))

    async def closed_within(self, seconds: float) -> bool:
        try:
            while await asyncio.wait_for(self.reader.read(65536), seconds):
                pass
        except (TimeoutError, ConnectionError):
            return False
        return True

    async def statuses(self, timeout: float = 5.0) -> list[str]:
        codes: list[str] = []
        try:
            while data := await asyncio.wait_for(self.reader.read(65536), timeout):
                for message in self.chunks.feed(data):
                    if message.type_id == COMMAND_AMF0:
                        for value in amf0.decode_all(message.payload):
                            if isinstance(value, dict) and "code" in value:
                                codes.append(str(value["code"]))
        except (TimeoutError, ConnectionError):
            pass
        return codes

    def close(self) -> None:
        self.writer.close()


@pytest.mark.asyncio
@pytest.mark.media
@needs_ffmpeg
async def test_ffmpeg_publish_reaches_the_registry_as_h264_and_aac(rig: Rig) -> None:
    process = await ffmpeg_publish(rig.url("good?token=ignored"), 3)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    await wait_until(lambda: not rig.registry.live())
    [recorder] = rig.recorders["s1"]
    assert recorder.video is not None and recorder.video.codec is Codec.H264
    assert (recorder.video.width, recorder.video.height) == (320, 240)
    assert recorder.audio is not None and recorder.audio.codec is Codec.AAC
    assert recorder.audio.sample_rate in (44100, 48000)
    video = [p for p in recorder.packets if p.kind is TrackKind.VIDEO]
    assert len(video) >= 80
    assert video[0].keyframe
    assert sum(p.keyframe for p in video) >= 3
    assert all(b.dts >= a.dts for a, b in itertools.pairwise(video))
    assert recorder.ended
    assert rig.streams[0].end_reason == "publisher_stopped"


@pytest.mark.asyncio
@pytest.mark.media
@needs_ffmpeg
async def test_wrong_and_duplicate_keys_are_refused_while_a_stream_flows(rig: Rig) -> None:
    good = await ffmpeg_publish(rig.url("good"), 8)
    await wait_until(lambda: rig.registry.is_live("s1"))
    wrong = await ffmpeg_publish(rig.url("nope"), 3)
    duplicate = await ffmpeg_publish(rig.url("good"), 3)
    assert await asyncio.wait_for(wrong.wait(), 10) != 0
    assert await asyncio.wait_for(duplicate.wait(), 10) != 0
    before = len(rig.recorders["s1"][0].packets)
    await asyncio.sleep(1.0)
    assert len(rig.recorders["s1"][0].packets) > before
    assert len(rig.recorders["s1"]) == 1
    good.kill()
    await good.wait()
    denials = [e.attributes["reason"] for e in rig.hooks.events]
    assert denials.count("invalid_key") == 1
    assert denials.count("already_live") == 1


@pytest.mark.asyncio
@pytest.mark.media
@needs_ffmpeg
async def test_killed_publisher_ends_the_stream_and_can_publish_again(rig: Rig) -> None:
    process = await ffmpeg_publish(rig.url("good"), 30)
    try:
        await wait_until(
            lambda: bool(rig.recorders.get("s1")) and len(rig.recorders["s1"][0].packets) > 30
        )
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    await wait_until(lambda: not rig.registry.is_live("s1"))
    assert rig.recorders["s1"][0].ended
    assert rig.streams[0].end_reason == "publisher_lost"
    again = await ffmpeg_publish(rig.url("good"), 2)
    assert await asyncio.wait_for(again.wait(), 20) == 0
    assert len(rig.recorders["s1"]) == 2
    assert rig.recorders["s1"][1].packets


@pytest.mark.asyncio
async def test_a_denied_publish_is_answered_and_closed_within_100ms(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    client.command("createStream", 2.0, None)
    await asyncio.sleep(0.2)
    started = time.monotonic()
    client.command("publish", 3.0, None, "bad-key", "live", stream_id=1)
    codes = await client.statuses(timeout=2.0)
    elapsed = time.monotonic() - started
    assert "NetConnection.Connect.Success" in codes
    assert "NetStream.Publish.BadName" in codes
    assert elapsed < 0.5  # generous on a shared machine; typically a few ms
    assert not rig.registry.live()


@pytest.mark.asyncio
async def test_raw_publish_then_delete_stream_ends_cleanly(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    client.command("publish", 2.0, None, "good", "live", stream_id=1)
    await wait_until(lambda: rig.registry.is_live("s1"), 5)
    client.command("deleteStream", 3.0, None, 1.0)
    await wait_until(lambda: not rig.registry.is_live("s1"), 5)
    assert rig.streams[0].end_reason == "publisher_stopped"
    client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # wrong protocol: version byte 'G'
        b"\x03" + os.urandom(700),  # truncated handshake, then silence
        b"",  # connects and sends nothing
    ],
)
async def test_garbage_connections_are_dropped(rig: Rig, garbage: bytes) -> None:
    client = await RawClient.connect(rig.server.port)
    client.writer.write(garbage)
    assert await client.closed_within(4.0)
    await wait_until(lambda: rig.server.sessions == 0, 3)


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [0, 0x80000000])
async def test_bad_chunk_sizes_drop_the_connection(rig: Rig, size: int) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    message = RtmpMessage(SET_CHUNK_SIZE, 0, 0, struct.pack(">I", size), csid=2)
    client.writer.write(encode_message(message, 128))
    assert await client.closed_within(2.0)


@pytest.mark.asyncio
async def test_random_bytes_after_the_handshake_drop_only_that_client(rig: Rig) -> None:
    good = await RawClient.connect(rig.server.port)
    await good.handshake()
    good.command("connect", 1.0, {"app": "live"})
    good.command("publish", 2.0, None, "good", "live", stream_id=1)
    await wait_until(lambda: rig.registry.is_live("s1"), 5)
    for _ in range(20):
        bad = await RawClient.connect(rig.server.port)
        await bad.handshake()
        bad.writer.write(os.urandom(4096))
        assert await bad.closed_within(3.0)
    assert rig.registry.is_live("s1")
    good.command("deleteStream", 3.0, None, 1.0)
    await wait_until(lambda: not rig.registry.is_live("s1"), 5)


@pytest.mark.asyncio
async def test_a_huge_declared_message_is_refused_without_buffering(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    header = bytes([4]) + (0).to_bytes(3, "big") + (0xFFFFFF).to_bytes(3, "big")
    client.writer.write(header + bytes([9]) + (1).to_bytes(4, "little") + b"x" * 128)
    assert await client.closed_within(2.0)
