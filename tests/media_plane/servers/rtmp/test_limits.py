"""What one RTMP client may cost: loop time, connection slots and memory (`RtmpLimits`),
on loopback with raw clients that misbehave on purpose and real ffmpeg publishers."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from media_plane.edge_engine import EngineSettings, MediaEngine
from media_plane.protocols.rtmp.chunks import DATA_AMF0, SET_CHUNK_SIZE, VIDEO
from media_plane.servers.rtmp import RtmpLimits
from tests.media_plane.rtmp_rig import Hooks, Publishers, RawClient, Rig, RigFactory, wait_until

pytestmark = pytest.mark.timeout(90)

# The avcC record x264 wrote for a 160x96 picture.
AVC_CONFIG = bytes.fromhex(
    "014d400cffe10016674d400ceca146d80880000003008000000f078a14cb01000468ce3c80"
)

#: A type 0 header on chunk stream 3 declaring a zero-length data message: every 0xC3
#: byte after it is a type 3 header, i.e. one more complete zero-length message.
ZERO_LENGTH_HEADER = b"\x03" + bytes(3) + bytes(3) + bytes([DATA_AMF0]) + bytes(4)
FLOOD = b"\xc3" * (4 * 1024 * 1024)

#: A bound on how long a playlist request may take while another client floods the
#: loop. Generous on purpose (the machine is shared and the request goes through httpx
#: and the HLS server on the same loop, ~2 ms unloaded); before per-read work was
#: bounded, one 256 KiB read of a flood held the loop for about a second.
LATENCY_BOUND_S = 0.5


def last_segment(playlist: str) -> str:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")][-1]


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    engine = MediaEngine(
        EngineSettings(rtmp_port=0, http_port=0, health_interval_s=3600),
        Hooks({"good": "s1", "other": "s2"}),
    )
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def flood(client: RawClient) -> None:
    with contextlib.suppress(ConnectionError):
        client.writer.write(FLOOD)
        await client.writer.drain()


async def time_playlist_while(
    http: httpx.AsyncClient, path: str, busy: asyncio.Future[Any], at_least_s: float
) -> tuple[float, str]:
    """Fetches the playlist every 50 ms while `busy` runs and for `at_least_s`; returns
    the slowest answer's duration and the last playlist."""
    slowest = 0.0
    body = ""
    until = time.monotonic() + at_least_s
    while not busy.done() or time.monotonic() < until:
        started = time.perf_counter()
        response = await http.get(path)
        slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code == 200
        body = response.text
        await asyncio.sleep(0.05)
    return slowest, body


async def live_playlist(http: httpx.AsyncClient, path: str) -> str:
    async with asyncio.timeout(30):
        while True:
            response = await http.get(path)
            if response.status_code == 200 and last_segment(response.text):
                return response.text
            await asyncio.sleep(0.2)


@pytest.mark.media
@pytest.mark.asyncio
async def test_a_zero_length_message_flood_is_cut_and_never_stalls_a_live_playlist(
    engine: MediaEngine, publishers: Publishers
) -> None:
    await publishers.start(f"rtmp://127.0.0.1:{engine.rtmp_port}/live/good", 60)
    path = "/hls/pb-s1/index.m3u8"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.http_port}") as http:
        before = await live_playlist(http, path)
        flooder = await RawClient.connect(engine.rtmp_port)
        await flooder.handshake()
        flooder.writer.write(ZERO_LENGTH_HEADER)
        flooding = asyncio.ensure_future(flood(flooder))
        cut = asyncio.ensure_future(flooder.closed_within(20))
        slowest, after = await time_playlist_while(http, path, cut, at_least_s=5.0)
        await flooding
        flooder.close()
    assert cut.result(), "the flooder was not disconnected"
    assert slowest < LATENCY_BOUND_S, f"a playlist took {slowest:.3f} s during the flood"
    assert last_segment(after) != last_segment(before), "the playlist stopped advancing"
    assert engine.rtmp.connections_dropped == 1
    assert engine.registry.is_live("s1")


@pytest.mark.media
@pytest.mark.asyncio
async def test_an_authorized_publishers_flood_shares_the_loop(
    engine: MediaEngine, publishers: Publishers
) -> None:
    await publishers.start(f"rtmp://127.0.0.1:{engine.rtmp_port}/live/good", 60)
    path = "/hls/pb-s1/index.m3u8"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.http_port}") as http:
        before = await live_playlist(http, path)
        flooder = await RawClient.connect(engine.rtmp_port)
        await flooder.start_publish("other")
        await flooder.statuses(until="NetStream.Publish.Start")
        flooder.writer.write(ZERO_LENGTH_HEADER)
        flooding = asyncio.ensure_future(flood(flooder))
        slowest, after = await time_playlist_while(http, path, flooding, at_least_s=5.0)
        flooder.close()
    assert slowest < LATENCY_BOUND_S, f"a playlist took {slowest:.3f} s during the flood"
    assert last_segment(after) != last_segment(before), "the playlist stopped advancing"


@pytest.mark.asyncio
async def test_messages_beyond_the_budget_before_a_publish_cut_the_connection(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(unauthorized_max_messages=20)
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    for transaction in range(2, 30):
        client.command("releaseStream", float(transaction), None, "x")
    assert await client.closed_within(3.0)
    assert rig.server.connections_dropped == 1
    assert not rig.hooks.asked


@pytest.mark.asyncio
async def test_bytes_beyond_the_budget_before_a_publish_cut_the_connection(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(unauthorized_max_bytes=4096)
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    for transaction in range(2, 8):
        client.command("releaseStream", float(transaction), None, "x" * 1000)
    assert await client.closed_within(3.0)
    assert rig.server.connections_dropped == 1


@pytest.mark.asyncio
async def test_an_authorized_publisher_is_not_held_to_the_budget(make_rig: RigFactory) -> None:
    rig = await make_rig(unauthorized_max_messages=10, unauthorized_max_bytes=2048)
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    client.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)
    frame = b"\x00\x00\x01\xf4\x41" + bytes(499)
    for _ in range(50):
        client.send(VIDEO, b"\x27\x01\x00\x00\x00" + frame, stream_id=1, csid=6)
    await wait_until(lambda: len(rig.recorders["s1"][0].packets) == 50, 5)
    assert rig.registry.is_live("s1")
    assert rig.server.connections_dropped == 0
    client.close()


@pytest.mark.asyncio
async def test_a_tiny_chunk_size_is_parsed_a_turn_at_a_time(make_rig: RigFactory) -> None:
    rig = await make_rig(chunks_per_turn=16)
    client = await RawClient.connect(rig.server.port)
    await client.start_publish("good")
    await client.statuses(until="NetStream.Publish.Start")
    client.send(SET_CHUNK_SIZE, struct.pack(">I", 1), csid=2)
    client.chunk_size = 1
    client.send(VIDEO, b"\x17\x00\x00\x00\x00" + AVC_CONFIG, stream_id=1, csid=6)
    frame = b"\x00\x00\x10\x00\x65" + bytes(4095)
    client.send(VIDEO, b"\x17\x01\x00\x00\x00" + frame, stream_id=1, csid=6)
    await wait_until(lambda: rig.recorders["s1"][0].packets, 5)
    assert rig.recorders["s1"][0].packets[0].data == frame
    client.close()


def test_limits_refuse_an_unauthorized_message_larger_than_an_authorized_one() -> None:
    with pytest.raises(ValueError, match="unauthorized_max_message_bytes"):
        RtmpLimits(unauthorized_max_message_bytes=2048, max_message_bytes=1024)


def partial_command(size: int, csid: int) -> bytes:
    """A type 0 header declaring a `size`-byte command, and all of it but the last byte
    (in 128-byte chunks): the server holds it half-assembled."""
    header = bytes([csid]) + bytes(3) + size.to_bytes(3, "big") + bytes([20]) + bytes(4)
    body = bytearray()
    for offset in range(0, size - 1, 128):
        if offset:
            body += bytes([0xC0 | csid])
        body += b"\x02" * min(128, size - 1 - offset)
    return header + bytes(body)


@pytest.mark.asyncio
async def test_before_a_publish_only_a_small_message_may_be_declared(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live"})
    client.writer.write(partial_command(1024 * 1024, 4)[:4096])
    assert await client.closed_within(2.0)
    assert rig.server.buffered == 0


@pytest.mark.asyncio
async def test_over_the_shared_buffer_bound_the_oldest_unauthorized_holder_is_cut(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_total_buffered_bytes=100 * 1024, max_buffered_bytes=64 * 1024)
    clients = []
    for _ in range(3):
        client = await RawClient.connect(rig.server.port)
        await client.handshake()
        client.writer.write(partial_command(40 * 1024, 4))
        clients.append(client)
        await asyncio.sleep(0.1)
    oldest, *others = clients
    assert await oldest.closed_within(2.0)
    assert not any([await client.closed_within(0.2) for client in others])
    assert rig.server.buffered <= 100 * 1024
    assert rig.server.connections_dropped == 1
    for client in clients:
        client.close()


@pytest.mark.asyncio
async def test_a_publisher_that_takes_the_shared_buffer_alone_is_cut(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_total_buffered_bytes=100 * 1024, max_buffered_bytes=64 * 1024)
    idle = await RawClient.connect(rig.server.port)
    await idle.handshake()
    publishers = []
    for key in ("good", "other"):
        client = await RawClient.connect(rig.server.port)
        await client.start_publish(key)
        await client.statuses(until="NetStream.Publish.Start")
        publishers.append(client)
    first, second = publishers
    first.writer.write(partial_command(60 * 1024, 6))
    await wait_until(lambda: rig.server.buffered > 50 * 1024, 2)
    second.writer.write(partial_command(60 * 1024, 6))
    assert await second.closed_within(2.0)
    assert not await first.closed_within(0.2)
    assert not await idle.closed_within(0.1)  # it held nothing, so cutting it frees nothing
    assert rig.registry.is_live("s1") and not rig.registry.is_live("s2")
    for client in (idle, *publishers):
        client.close()
