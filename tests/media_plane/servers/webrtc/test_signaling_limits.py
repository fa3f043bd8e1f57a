"""WHIP/WHEP signaling under descriptor pressure, on real sockets of a real engine: the
request-head deadline counts every byte from accept, and connections are capped per
client address while other addresses are still answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from media_plane.edge_engine import ConnectionLimits, MediaEngine
from tests.media_plane.webrtc_edge import Hooks, edge_settings

pytestmark = pytest.mark.asyncio

#: Generous: only stops a test that would otherwise wait forever.
_WAIT_S = 10.0
_PREFLIGHT = b"OPTIONS /whip HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest_asyncio.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    limits = ConnectionLimits(
        header_timeout_s=0.5, idle_timeout_s=60.0, max_connections_per_address=2
    )
    engine = MediaEngine(edge_settings(webrtc_limits=limits), Hooks())
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def _open(
    engine: MediaEngine, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", engine.webrtc_port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(_WAIT_S):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            return True


async def _status(reader: asyncio.StreamReader) -> int:
    async with asyncio.timeout(_WAIT_S):
        head = await reader.readuntil(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1])


async def _drip_until_closed(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> int:
    closed = asyncio.ensure_future(_closed_by_server(reader))
    drips = 0
    while not closed.done() and drips < 100:
        writer.write(b"\r\n")
        drips += 1
        await asyncio.sleep(0.1)
    assert await closed
    return drips


async def test_a_crlf_drip_is_dropped_at_the_head_deadline(engine: MediaEngine) -> None:
    reader, writer = await _open(engine)
    assert await _drip_until_closed(writer, reader) < 100
    writer.close()


async def test_a_kept_alive_connection_dripping_crlf_is_dropped(engine: MediaEngine) -> None:
    reader, writer = await _open(engine)
    writer.write(_PREFLIGHT)
    assert await _status(reader) == 204
    assert await _drip_until_closed(writer, reader) < 100
    writer.close()


async def test_empty_lines_before_a_request_are_still_tolerated(engine: MediaEngine) -> None:
    reader, writer = await _open(engine)
    writer.write(b"\r\n" + _PREFLIGHT)
    assert await _status(reader) == 204
    writer.write(b"\r\n\r\n" + _PREFLIGHT)
    assert await _status(reader) == 204
    writer.close()


async def test_past_the_per_address_cap_a_connection_is_closed_and_others_are_served(
    engine: MediaEngine,
) -> None:
    held = [await _open(engine) for _ in range(2)]
    try:
        for reader, writer in held:
            writer.write(_PREFLIGHT)
            assert await _status(reader) == 204
        reader, writer = await _open(engine)
        writer.write(_PREFLIGHT)
        assert await _closed_by_server(reader)
        writer.close()
        assert engine.webrtc_http is not None and engine.webrtc_http.refused == 1

        reader, writer = await _open(engine, "127.0.0.2")
        writer.write(_PREFLIGHT)
        assert await _status(reader) == 204
        writer.close()
    finally:
        for _, writer in held:
            writer.close()
