"""The HLS server under descriptor pressure, on real sockets: head deadlines that count
every byte, connection caps per server and per client address, and accepts that survive
running out of descriptors (EMFILE) in a real server process with a lowered limit."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media_plane.servers.http import ConnectionLimits
from tests.media_plane.hls_server import Served, StartServer, get, read_response

#: Generous: these deadlines only stop a test that would otherwise wait forever.
_WAIT_S = 10.0


async def _open_from(
    served: Served, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.server.port, local_addr=(source, 0))


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(_WAIT_S):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            return True


@pytest.mark.asyncio
async def test_a_crlf_drip_is_dropped_at_the_head_deadline(serve: StartServer) -> None:
    served = await serve(limits=ConnectionLimits(header_timeout_s=0.5, idle_timeout_s=60.0))
    reader, writer = await _open_from(served)
    closed = asyncio.ensure_future(_closed_by_server(reader))
    drips = 0
    while not closed.done() and drips < 100:
        writer.write(b"\r\n")  # empty lines are allowed before a request line, not forever
        drips += 1
        await asyncio.sleep(0.1)
    assert await closed
    writer.close()
    assert drips < 100
    assert served.server.stats.idle_closed == 1


@pytest.mark.asyncio
async def test_a_connection_that_sends_nothing_is_dropped_at_the_head_deadline(
    serve: StartServer,
) -> None:
    served = await serve(limits=ConnectionLimits(header_timeout_s=0.3, idle_timeout_s=60.0))
    reader, writer = await _open_from(served)
    assert await _closed_by_server(reader)
    writer.close()


@pytest.mark.asyncio
async def test_a_kept_alive_connection_dripping_crlf_is_dropped(serve: StartServer) -> None:
    served = await serve(limits=ConnectionLimits(header_timeout_s=0.5, idle_timeout_s=60.0))
    reader, writer = await _open_from(served)
    writer.write(get(served.segment_path))
    assert (await read_response(reader)).status == 200
    closed = asyncio.ensure_future(_closed_by_server(reader))
    for _ in range(100):
        if closed.done():
            break
        writer.write(b"\r\n")
        await asyncio.sleep(0.1)
    assert await closed
    writer.close()


@pytest.mark.asyncio
async def test_past_the_per_address_cap_a_connection_is_closed_and_others_are_served(
    serve: StartServer,
) -> None:
    served = await serve(limits=ConnectionLimits(max_connections_per_address=3))
    held = [await _open_from(served) for _ in range(3)]
    try:
        for reader, writer in held:
            writer.write(get(served.segment_path))
            assert (await read_response(reader)).status == 200
        reader, writer = await _open_from(served)
        writer.write(get(served.segment_path))
        assert await _closed_by_server(reader)
        writer.close()
        assert served.server.refused == 1

        # Another client address still gets served (127.0.0.2 is loopback too).
        reader, writer = await _open_from(served, "127.0.0.2")
        writer.write(get(served.segment_path))
        response = await read_response(reader)
        writer.close()
        assert response.status == 200

        # A slot freed by a closed connection is given to the next one.
        held_reader, held_writer = held.pop()
        held_writer.close()
        assert await _closed_by_server(held_reader)
        async with asyncio.timeout(_WAIT_S):
            while served.server.stats.connections_open > len(held):
                await asyncio.sleep(0.01)
        reader, writer = await _open_from(served)
        writer.write(get(served.segment_path))
        assert (await read_response(reader)).status == 200
        writer.close()
    finally:
        for _, writer in held:
            writer.close()


@pytest.mark.asyncio
async def test_past_the_server_cap_every_address_is_refused(serve: StartServer) -> None:
    served = await serve(limits=ConnectionLimits(max_connections=2))
    held = [await _open_from(served, source) for source in ("127.0.0.1", "127.0.0.3")]
    try:
        for reader, writer in held:
            writer.write(get(served.segment_path))
            assert (await read_response(reader)).status == 200
        reader, writer = await _open_from(served, "127.0.0.2")
        writer.write(get(served.segment_path))
        assert await _closed_by_server(reader)
        writer.close()
    finally:
        for _, writer in held:
            writer.close()


# -- EMFILE -------------------------------------------------------------------------------

_SERVER = Path(__file__).with_name("emfile_server.py")


def _request(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /hls/none/index.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(64)


def test_running_out_of_descriptors_logs_one_line_and_recovers() -> None:
    process = subprocess.Popen(
        [sys.executable, str(_SERVER), "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    held: list[socket.socket] = []
    try:
        assert process.stdout is not None and process.stderr is not None
        port = int(process.stdout.readline())
        assert _request(port, _WAIT_S).startswith(b"HTTP/1.1 404")
        # Far more connections than the server's 64 descriptors; the kernel completes
        # them into the listen backlog whether or not the server can accept them.
        for _ in range(150):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=_WAIT_S))
        # Several backoff rounds while descriptors stay exhausted (backoff at most 0.2 s).
        time.sleep(2.0)
        # Free the descriptors: the server must serve again, without a restart.
        for sock in held:
            sock.close()
        held.clear()
        deadline = time.monotonic() + _WAIT_S
        answer = b""
        while time.monotonic() < deadline and not answer.startswith(b"HTTP/1.1 404"):
            with contextlib.suppress(OSError):
                answer = _request(port, 2.0)
        assert answer.startswith(b"HTTP/1.1 404")
    finally:
        for sock in held:
            sock.close()
        process.terminate()
        _, stderr = process.communicate(timeout=_WAIT_S)
    lines = stderr.splitlines()
    accept_lines = [line for line in lines if "accept" in line]
    assert len(accept_lines) == 1, stderr[:4000]
    assert "EMFILE" in accept_lines[0]
    assert "Traceback" not in stderr
