"""The RTMP server on loopback: real ffmpeg publishers, and raw clients that follow the
protocol or break it on purpose."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import struct
import sys
import time

import pytest

from media_plane.media import Codec, TrackKind
from media_plane.media.events import EngineEventKind
from media_plane.media.hooks import PublishDenial
from media_plane.media.live_stream import StreamRegistry
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AUDIO,
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    RtmpMessage,
    encode_message,
)
from media_plane.servers.rtmp.server import RtmpServer
from media_plane.servers.rtmp.session import SessionOptions
from tests.media_plane.rtmp_rig import (
    Hooks,
    Publishers,
    RawClient,
    Rig,
    RigFactory,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

# The avcC record x264 wrote for a 160x96 picture.
AVC_CONFIG = bytes.fromhex(
    "014d400cffe10016674d400ceca146d80880000003008000000f078a14cb01000468ce3c80"
)


def closed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "connection closed" in r.getMessage()]


# -- real ffmpeg -------------------------------------------------------------------


@pytest.mark.media
@pytest.mark.asyncio
async def test_ffmpeg_publish_reaches_the_registry_as_h264_and_aac(
    rig: Rig, publishers: Publishers
) -> None:
    process = await publishers.start(rig.url("good?token=ignored"), 3)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    await wait_until(lambda: not rig.registry.live())

    assert [(key, protocol) for key, protocol, _ in rig.hooks.asked] == [("good", "rtmp")]
    assert rig.hooks.asked[0][2].startswith("127.0.0.1:")
    [recorder] = rig.recorders["s1"]
    assert len(recorder.tracks) == 1  # announced once, with both tracks
    video, audio = recorder.tracks[0]
    assert video is not None and video.codec is Codec.H264
    assert video.extradata[0] == 1 and len(video.extradata) > 10  # avcC
    assert (video.width, video.height) == (320, 240)
    assert audio is not None and audio.codec is Codec.AAC
    assert audio.sample_rate in (44100, 48000)
    assert audio.channels == 1

    frames = [p for p in recorder.packets if p.kind is TrackKind.VIDEO]
    sounds = [p for p in recorder.packets if p.kind is TrackKind.AUDIO]
    assert len(frames) >= 80 and len(sounds) >= 100
    assert frames[0].keyframe and sum(p.keyframe for p in frames) >= 3
    assert all(b.dts > a.dts for a, b in itertools.pairwise(frames))
    assert all(b.dts > a.dts for a, b in itertools.pairwise(sounds))
    assert all(p.pts >= p.dts for p in frames)
    # AVCC: the payload starts with a 4-byte NAL length that fits inside it.
    assert all(int.from_bytes(p.data[:4], "big") <= len(p.data) - 4 for p in frames)

    assert recorder.ends == 1
    assert rig.streams[0].end_reason == "publisher_stopped"
    assert [reason for _, reason in rig.registry.finished] == ["publisher_stopped"]


@pytest.mark.media
@pytest.mark.asyncio
async def test_ffmpeg_extended_timestamps_are_read_across_continuation_chunks(
    rig: Rig, publishers: Publishers
) -> None:
    # 16,778 s is past 2^24 ms: every type 0/1 header and every type 3 continuation
    # chunk of the first messages carries a 32-bit extended timestamp.
    process = await publishers.start(rig.url("good"), 1.5, "-output_ts_offset", "16778")
    assert await asyncio.wait_for(process.wait(), 30) == 0
    await wait_until(lambda: not rig.registry.live())
    [recorder] = rig.recorders["s1"]
    frames = [p for p in recorder.packets if p.kind is TrackKind.VIDEO]
    assert len(frames) >= 30
    assert frames[0].keyframe
    assert frames[0].dts >= 0xFFFFFF * 90
    assert frames[-1].dts - frames[0].dts < 2 * 90_000
    assert all(b.dts > a.dts for a, b in itertools.pairwise(frames))


@pytest.mark.media
@pytest.mark.asyncio
async def test_wrong_and_duplicate_keys_are_refused_while_a_stream_flows(
    rig: Rig, publishers: Publishers
) -> None:
    good = await publishers.start(rig.url("good"), 10)
    await wait_until(lambda: rig.registry.is_live("s1") and len(rig.recorders["s1"][0].packets))
    wrong = await publishers.start(rig.url("nope"), 3)
    duplicate = await publishers.start(rig.url("good"), 3)
    assert await asyncio.wait_for(wrong.wait(), 10) != 0
    assert await asyncio.wait_for(duplicate.wait(), 10) != 0

    flowing = rig.recorders["s1"][0]
    before = len(flowing.packets)
    await wait_until(lambda: len(flowing.packets) > before + 20, 10)
    assert len(rig.recorders["s1"]) == 1 and not flowing.ended
    denials = [e for e in rig.hooks.events if e.kind is EngineEventKind.PUBLISH_DENIED]
    assert sorted(str(e.reason) for e in denials) == ["already_live", "invalid_key"]
    assert all(e.protocol == "rtmp" for e in denials)
    good.kill()
    await good.wait()


@pytest.mark.media
@pytest.mark.asyncio
async def test_killed_publisher_ends_the_stream_once_and_the_key_publishes_again(
    rig: Rig, publishers: Publishers
) -> None:
    process = await publishers.start(rig.url("good"), 30)
    await wait_until(
        lambda: bool(rig.recorders.get("s1")) and len(rig.recorders["s1"][0].packets) > 30
    )
    process.send_signal(signal.SIGKILL)
    await process.wait()
    await wait_until(lambda: not rig.registry.is_live("s1"))
    assert rig.recorders["s1"][0].ends == 1
    assert rig.streams[0].end_reason == "publisher_lost"
    assert [reason for _, reason in rig.registry.finished] == ["publisher_lost"]

    again = await publishers.start(rig.url("good"), 1.5)
    assert await asyncio.wait_for(again.wait(), 20) == 0
    await wait_until(lambda: not rig.registry.is_live("s1"))
    assert len(rig.recorders["s1"]) == 2
    assert rig.recorders["s1"][1].packets and rig.recorders["s1"][1].ended


# -- the command exchange ----------------------------------------------------------


@pytest.mark.asyncio
async def test_connect_gets_window_bandwidth_chunk_size_and_success(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})
    client.command("releaseStream", 2.0, None, "good")
    client.command("FCPublish", 3.0, None, "good")
    client.command("createStream", 4.0, None)
    messages = await client.read_messages(lambda m: len(m) >= 7)
    by_type = {m.type_id: m for m in messages}
    assert struct.unpack(">I", by_type[WINDOW_ACK_SIZE].payload) == (2_500_000,)
    assert by_type[SET_PEER_BANDWIDTH].payload == struct.pack(">IB", 2_500_000, 2)
    assert struct.unpack(">I", by_type[SET_CHUNK_SIZE].payload) == (4096,)
    replies = [amf0.decode_all(m.payload) for m in messages if m.type_id == COMMAND_AMF0]
    assert replies[0][:2] == ["_result", 1.0]
    assert replies[0][3] == {
        "level": "status",
        "code": "NetConnection.Connect.Success",
        "description": "Connection succeeded.",
        "objectEncoding": 0.0,
    }
    assert replies[1] == ["_result", 2.0, None]
    assert replies[2][0] == "onFCPublish"
    assert replies[3] == ["_result", 4.0, None, 1.0]
    client.close()


@pytest.mark.asyncio
async def test_publish_start_then_media_then_delete_stream_ends_once(rig: Rig) -> None:
    rig.hooks.delay = 0.2
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    # An encoder that does not wait for Publish.Start: its sequence headers arrive while
    # the publish is being authorized and must not be lost.
    client.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)
    client.send(AUDIO, b"\xaf\x00\x12\x10", stream_id=1, csid=4)
    codes = await client.statuses(until="NetStream.Publish.Start")
    assert "NetStream.Publish.Start" in codes
    messages = client.messages
    assert any(
        m.type_id == USER_CONTROL and m.payload == struct.pack(">HI", 0, 1) for m in messages
    )
    for i in range(3):
        client.send(VIDEO, b"\x17\x01\x00\x00\x00" + b"\x00\x00\x00\x01\x65", stream_id=1, csid=6)
        client.send(AUDIO, b"\xaf\x01" + bytes([i]) * 8, stream_id=1, csid=4)
    await wait_until(lambda: len(rig.recorders["s1"][0].packets) == 6, 5)
    recorder = rig.recorders["s1"][0]
    assert recorder.video is not None and (recorder.video.width, recorder.video.height) == (160, 96)
    assert recorder.audio is not None and recorder.audio.sample_rate == 44100
    assert len(recorder.tracks) == 1

    client.command("FCUnpublish", 5.0, None, "good")
    client.command("deleteStream", 6.0, None, 1.0)
    await wait_until(lambda: not rig.registry.is_live("s1"), 5)
    client.close()
    await wait_until(lambda: rig.server.sessions == 0, 5)
    assert rig.registry.finished == [(rig.streams[0].session_id, "publisher_stopped")]
    assert recorder.ends == 1


@pytest.mark.skipif(sys.platform != "linux", reason="reads are batched on Linux only")
@pytest.mark.asyncio
async def test_a_publisher_is_read_in_batches_and_a_stall_still_delivers_its_last_frame(
    rig: Rig,
) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    client.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)
    [session] = rig.server._sessions
    # ~100 KB/s of 2 KB frames until the server's sweep has raised the watermark.
    frame = b"\x27\x01\x00\x00\x00\x00\x00\x07\xfb" + bytes(2043)
    async with asyncio.timeout(5):
        while session.read_watermark == 1:
            client.send(VIDEO, frame, stream_id=1, csid=6)
            await asyncio.sleep(0.02)
    assert session.read_watermark > len(frame)
    last = b"\x27\x01\x00\x00\x00\x00\x00\x07\xfb" + b"\xee" * 2043
    client.send(VIDEO, last, stream_id=1, csid=6)
    recorder = rig.recorders["s1"][0]
    # Held below the watermark until the next sweeps see the publisher stalled (0.25 s
    # apart here), well before the 2 s idle timeout.
    await wait_until(lambda: recorder.packets[-1].data.endswith(b"\xee" * 16), 1.5)
    assert rig.registry.is_live("s1")
    client.close()


@pytest.mark.asyncio
async def test_acknowledgements_follow_the_peer_window(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.send(WINDOW_ACK_SIZE, struct.pack(">I", 5000), csid=2)
    client.command("connect", 1.0, {"app": "live"})
    for _ in range(6):
        client.send(18, amf0.encode("@setDataFrame", "x" * 1000), stream_id=1, csid=4)
    messages = await client.read_messages(
        lambda m: any(x.type_id == ACKNOWLEDGEMENT for x in m), timeout=3
    )
    acks = [struct.unpack(">I", m.payload)[0] for m in messages if m.type_id == ACKNOWLEDGEMENT]
    assert acks and acks[0] >= 5000
    client.close()


@pytest.mark.asyncio
async def test_play_is_refused_with_an_error_status(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "media_plane.servers.rtmp")
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    client.command("createStream", 2.0, None)
    client.command("play", 3.0, None, "pb-s1", stream_id=1)
    codes = await client.statuses()
    assert codes[-1] == "NetStream.Play.Failed"
    assert await client.closed_within(1.0)
    await wait_until(lambda: rig.server.sessions == 0, 2)
    assert any("play refused" in line for line in closed_lines(caplog))


# -- refusals ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_denied_publish_is_answered_and_closed(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "media_plane.servers.rtmp")
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    client.command("createStream", 2.0, None)
    await client.read_messages(lambda m: len(m) >= 5)
    client.command("publish", 3.0, None, "bad-key", "live", stream_id=1)
    codes = await client.statuses(until="NetStream.Publish.BadName", timeout=2)
    assert codes[-1] == "NetStream.Publish.BadName"
    # The server closes the connection itself; how soon is the benchmarks' business.
    assert await client.closed_within(10.0)
    assert not rig.registry.live()
    [event] = rig.hooks.events
    assert event.kind is EngineEventKind.PUBLISH_DENIED
    assert event.reason == "invalid_key"
    await wait_until(lambda: rig.server.sessions == 0, 2)
    assert [line for line in closed_lines(caplog) if "invalid_key" in line]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("denial", "status"),
    [
        (PublishDenial.STREAM_DISABLED, "NetStream.Publish.Denied"),
        (PublishDenial.TENANT_SUSPENDED, "NetStream.Publish.Denied"),
        (PublishDenial.QUOTA_EXCEEDED, "NetStream.Publish.Denied"),
        (PublishDenial.UNAVAILABLE, "NetStream.Publish.Denied"),
        (PublishDenial.ALREADY_LIVE, "NetStream.Publish.BadName"),
    ],
)
async def test_denials_map_to_onstatus_codes(rig: Rig, denial: PublishDenial, status: str) -> None:
    rig.hooks.denials["good"] = denial
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    assert (await client.statuses(until=status))[-1] == status
    assert await client.closed_within(1.0)
    [event] = rig.hooks.events
    assert event.reason == denial.value
    assert event.message == "good is refused"


@pytest.mark.asyncio
async def test_a_failing_hook_refuses_the_publish(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.hooks.broken = True
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    assert (await client.statuses(until="NetStream.Publish.Denied"))[-1] == (
        "NetStream.Publish.Denied"
    )
    assert rig.hooks.events[0].reason == "unavailable"
    assert "authorize_publish failed" in caplog.text


@pytest.mark.asyncio
async def test_a_hook_that_hangs_times_out_as_unavailable(make_rig: RigFactory) -> None:
    rig = await make_rig(options=SessionOptions(authorize_timeout=0.2))
    rig.hooks.delay = 30
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    codes = await client.statuses(until="NetStream.Publish.Denied", timeout=3)
    assert codes[-1] == "NetStream.Publish.Denied"
    assert rig.hooks.events[0].message == "authorization timed out"


@pytest.mark.asyncio
async def test_leaving_during_authorization_starts_nothing(rig: Rig) -> None:
    rig.hooks.delay = 0.3
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await wait_until(lambda: rig.hooks.asked, 2)
    client.close()
    await wait_until(lambda: rig.server.sessions == 0, 2)
    # The same key again, authorized after the first (same delay, asked later): had the
    # first publish started its stream, this one would be refused as already live.
    again = await RawClient.connect(rig.server.port)
    await again.start_publish("good")
    codes = await again.statuses(until="NetStream.Publish.Start", timeout=5)
    assert codes[-1] == "NetStream.Publish.Start"
    assert len(rig.streams) == 1
    again.close()


@pytest.mark.asyncio
async def test_a_second_publish_on_one_connection_is_a_protocol_error(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    client.command("publish", 4.0, None, "other", "live", stream_id=1)
    assert await client.closed_within(2.0)
    await wait_until(lambda: not rig.registry.live(), 2)
    assert rig.streams[0].end_reason == "protocol_error"


# -- hostile and broken clients ------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "unsupported RTMP version 71"),
        (b"\x03" + os.urandom(700), "handshake timed out"),  # truncated, then silence
        (b"", "handshake timed out"),  # connects and sends nothing
    ],
)
async def test_garbage_connections_are_dropped_with_a_log_line(
    rig: Rig, caplog: pytest.LogCaptureFixture, garbage: bytes, reason: str
) -> None:
    caplog.set_level(logging.INFO, "media_plane.servers.rtmp")
    client = await RawClient.connect(rig.server.port)
    client.writer.write(garbage)
    assert await client.closed_within(4.0)
    await wait_until(lambda: rig.server.sessions == 0, 3)
    [line] = closed_lines(caplog)
    assert reason in line


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [0, 0x80000000, 0xFFFFFFFF])
async def test_bad_chunk_sizes_drop_the_connection(
    rig: Rig, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.send(SET_CHUNK_SIZE, struct.pack(">I", size), csid=2)
    assert await client.closed_within(2.0)
    await wait_until(lambda: rig.server.sessions == 0, 2)
    assert f"invalid chunk size {size}" in caplog.text


@pytest.mark.asyncio
async def test_a_huge_declared_message_is_refused_without_buffering(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    header = bytes([4]) + (0).to_bytes(3, "big") + (0xFFFFFF).to_bytes(3, "big")
    client.writer.write(header + bytes([9]) + (1).to_bytes(4, "little") + b"x" * 128)
    assert await client.closed_within(2.0)


@pytest.mark.asyncio
async def test_commands_before_connect_are_a_protocol_error(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("publish", 1.0, None, "good", "live", stream_id=1)
    assert await client.closed_within(2.0)
    assert not rig.hooks.asked


@pytest.mark.asyncio
async def test_hostile_clients_drop_alone_while_a_stream_flows(rig: Rig) -> None:
    good = await RawClient.connect(rig.server.port)
    await good.start_publish("good")
    await good.statuses(until="NetStream.Publish.Start")
    good.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)

    async def hostile(kind: int) -> bool:
        bad = await RawClient.connect(rig.server.port)
        await bad.handshake()
        if kind == 0:
            bad.writer.write(os.urandom(4096))
        elif kind == 1:  # a chunk stream that starts mid-message
            bad.writer.write(b"\xc4" + os.urandom(200))
        else:  # a command that is not AMF0
            bad.send(COMMAND_AMF0, b"\x11\x22\x33", csid=3)
        closed = await bad.closed_within(3.0)
        bad.close()
        return closed

    results = await asyncio.gather(*(hostile(i % 3) for i in range(15)))
    assert all(results)
    good.send(VIDEO, b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65", stream_id=1, csid=6)
    await wait_until(lambda: rig.recorders["s1"][0].packets, 3)
    assert rig.registry.is_live("s1")
    good.command("deleteStream", 5.0, None, 1.0)
    await wait_until(lambda: not rig.registry.is_live("s1"), 5)
    good.close()


@pytest.mark.asyncio
async def test_a_connection_that_never_publishes_is_dropped(make_rig: RigFactory) -> None:
    rig = await make_rig(publish_timeout_s=0.5)
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    started = time.monotonic()
    assert await client.closed_within(3.0)
    assert time.monotonic() - started >= 0.4
    assert rig.server.connections_dropped == 1


@pytest.mark.asyncio
async def test_a_publisher_that_goes_silent_is_dropped(make_rig: RigFactory) -> None:
    rig = await make_rig(idle_timeout_s=0.5)
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    assert await client.closed_within(3.0)
    await wait_until(lambda: not rig.registry.live(), 2)
    assert rig.streams[0].end_reason == "publisher_lost"


@pytest.mark.asyncio
async def test_at_the_cap_with_every_slot_publishing_a_new_connection_is_closed(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_connections=1)
    publisher = await RawClient.connect(rig.server.port)
    await publisher.start_publish("good")
    await publisher.statuses(until="NetStream.Publish.Start")
    second = await RawClient.connect(rig.server.port)
    assert await second.closed_within(2.0)
    assert rig.registry.is_live("s1")
    assert rig.server.connections_dropped == 1
    publisher.close()


@pytest.mark.asyncio
async def test_at_the_cap_the_oldest_unauthorized_connection_makes_room(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_connections=3)
    publisher = await RawClient.connect(rig.server.port)
    await publisher.start_publish("good")
    await publisher.statuses(until="NetStream.Publish.Start")
    oldest = await RawClient.connect(rig.server.port)
    await oldest.handshake()
    younger = await RawClient.connect(rig.server.port)
    await younger.handshake()
    newest = await RawClient.connect(rig.server.port)
    assert await oldest.closed_within(2.0)
    await newest.handshake()
    newest.command("connect", 1.0, {"app": "live"})
    assert any(m.type_id == COMMAND_AMF0 for m in await newest.read_messages(lambda m: len(m) >= 4))
    assert not await younger.closed_within(0.2)
    assert rig.registry.is_live("s1")
    for client in (publisher, younger, newest):
        client.close()


@pytest.mark.asyncio
async def test_one_address_gets_at_most_its_share_of_connections(make_rig: RigFactory) -> None:
    rig = await make_rig(max_connections_per_address=3, handshake_timeout_s=30.0)
    greedy = [await RawClient.connect(rig.server.port, "127.0.0.2") for _ in range(6)]
    for client in greedy[3:]:
        await client.handshake()
    other = await RawClient.connect(rig.server.port, "127.0.0.3")
    await other.handshake()
    assert all([await client.closed_within(1.0) for client in greedy[:3]])
    await wait_until(lambda: rig.server.sessions == 4, 2)
    assert not await other.closed_within(0.2)
    for client in (*greedy, other):
        client.close()


@pytest.mark.media
@pytest.mark.asyncio
async def test_idle_connections_filling_every_slot_do_not_lock_out_ffmpeg(
    make_rig: RigFactory, publishers: Publishers
) -> None:
    rig = await make_rig(max_connections=20, handshake_timeout_s=30.0)
    idle = [await RawClient.connect(rig.server.port, f"127.0.0.{2 + n % 4}") for n in range(20)]
    await wait_until(lambda: rig.server.sessions == 20, 2)
    process = await publishers.start(rig.url("good"), 2)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert rig.recorders["s1"][0].packets
    for client in idle:
        client.close()


# -- lifecycle ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stop_closes_every_session_and_ends_live_streams(rig: Rig) -> None:
    publisher = await RawClient.connect(rig.server.port)
    await publisher.start_publish("good")
    await publisher.statuses(until="NetStream.Publish.Start")
    idle = await RawClient.connect(rig.server.port)
    await wait_until(lambda: rig.server.sessions == 2, 2)
    await rig.server.stop()
    assert rig.server.sessions == 0
    assert not rig.registry.live()
    assert rig.streams[0].end_reason == "node_stopped"
    assert rig.recorders["s1"][0].ends == 1
    assert await publisher.closed_within(1.0) and await idle.closed_within(1.0)
    await rig.server.stop()  # a second stop is harmless


@pytest.mark.asyncio
async def test_port_zero_binds_and_exposes_the_port() -> None:
    server = RtmpServer(StreamRegistry(), Hooks({}), "127.0.0.1", 0)
    with pytest.raises(RuntimeError):
        _ = server.port
    await server.start()
    try:
        assert server.port > 0
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x03" + bytes(1536))
        assert len(await reader.readexactly(1 + 2 * 1536)) == 3073
        writer.close()
        await writer.wait_closed()
    finally:
        await server.stop()
    assert server.port > 0


@pytest.mark.asyncio
async def test_chunked_writes_with_a_small_client_chunk_size_are_reassembled(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    client.send(SET_CHUNK_SIZE, struct.pack(">I", 7), csid=2)
    client.chunk_size = 7
    client.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)
    frame = b"\x00\x00\x10\x00\x65" + os.urandom(4096 - 1)
    message = RtmpMessage(VIDEO, 1, 40, b"\x17\x01\x00\x00\x00" + frame, csid=6)
    client.writer.write(encode_message(message, 7))
    await wait_until(lambda: rig.recorders["s1"][0].packets, 3)
    [packet] = rig.recorders["s1"][0].packets
    assert packet.data == frame and packet.dts == 40 * 90 and packet.keyframe
    client.close()
