"""The HLS delivery server on a real socket: routes, headers, auth, HTTP/1.1 framing."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from media_plane.media.hooks import PlayDecision, PlayDenial
from media_plane.servers.http import ConnectionLimits
from tests.media_plane.hls_server import (
    PLAYBACK_ID,
    SEGMENT_BYTES,
    Served,
    StartServer,
    get,
    read_response,
)

pytestmark = pytest.mark.asyncio


async def _client(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=served.base, timeout=5.0)


async def _open(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", served.server.port)


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(5):
        try:
            return await reader.read(1) == b""
        except ConnectionResetError:
            # Closed while the client was still sending: the kernel answers with a reset.
            return True


# -- content -----------------------------------------------------------------------------


async def test_playlist_is_served_as_hls_with_cors_and_a_short_cache(served: Served) -> None:
    async with await _client(served) as client:
        response = await client.get(served.playlist_path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] in ("max-age=1", "no-cache")
    assert "date" in response.headers
    assert response.content == served.store.playlist(PLAYBACK_ID)
    assert response.content.startswith(b"#EXTM3U\n")


async def test_segment_is_served_intact_with_a_long_immutable_cache(served: Served) -> None:
    async with await _client(served) as client:
        response = await client.get(served.segment_path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp2t"
    assert response.headers["access-control-allow-origin"] == "*"
    cache = response.headers["cache-control"]
    assert "max-age=86400" in cache and "immutable" in cache
    assert int(response.headers["content-length"]) == len(SEGMENT_BYTES)
    assert response.content == SEGMENT_BYTES


@pytest.mark.parametrize("which", ["playlist", "segment"])
async def test_head_sends_the_headers_of_get_without_a_body(served: Served, which: str) -> None:
    path = served.playlist_path if which == "playlist" else served.segment_path
    async with await _client(served) as client:
        got = await client.get(path)
        head = await client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control", "access-control-allow-origin"):
        assert head.headers[name] == got.headers[name]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/hls/",
        "/hls/unknown/index.m3u8",
        f"/hls/{PLAYBACK_ID}/missing.ts",
        f"/hls/{PLAYBACK_ID}/index.m3u",
        f"/hls/{PLAYBACK_ID}/sub/index.m3u8",
        f"/hls/{PLAYBACK_ID}/../index.m3u8",
        "/hls/bad%20id/index.m3u8",
        f"/hls/{PLAYBACK_ID}",
    ],
)
async def test_unknown_streams_segments_and_paths_are_404(served: Served, path: str) -> None:
    async with await _client(served) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["access-control-allow-origin"] == "*"
    assert served.hooks.calls == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "BREW"])
async def test_other_methods_are_405_with_allow(served: Served, method: str) -> None:
    async with await _client(served) as client:
        response = await client.request(method, served.playlist_path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


async def test_options_answers_the_cors_preflight(served: Served) -> None:
    async with await _client(served) as client:
        response = await client.options(
            served.playlist_path,
            headers={
                "Origin": "https://player.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert served.hooks.calls == []


# -- authorization -----------------------------------------------------------------------


async def test_token_from_the_query_reaches_the_hook(served: Served) -> None:
    served.hooks.allowed_tokens = {"t0k3n"}
    async with await _client(served) as client:
        response = await client.get(served.playlist_path, params={"token": "t0k3n"})
    assert response.status_code == 200
    assert served.hooks.calls == [(PLAYBACK_ID, "t0k3n", "127.0.0.1")]


async def test_bearer_token_reaches_the_hook(served: Served) -> None:
    served.hooks.allowed_tokens = {"abc.def"}
    async with await _client(served) as client:
        response = await client.get(
            served.playlist_path, headers={"Authorization": "Bearer abc.def"}
        )
    assert response.status_code == 200
    assert served.hooks.calls[0][1] == "abc.def"


async def test_missing_token_is_401_with_a_bearer_challenge(served: Served) -> None:
    served.hooks.allowed_tokens = {"secret"}
    async with await _client(served) as client:
        response = await client.get(served.playlist_path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["access-control-allow-origin"] == "*"
    assert served.server.stats.denied == 1


async def test_denied_token_is_403(served: Served) -> None:
    served.hooks.allowed_tokens = {"secret"}
    async with await _client(served) as client:
        response = await client.get(served.playlist_path, params={"token": "wrong"})
    assert response.status_code == 403


async def test_failing_hook_is_503(served: Served) -> None:
    served.hooks.error = RuntimeError("control plane down")
    async with await _client(served) as client:
        response = await client.get(served.playlist_path)
    assert response.status_code == 503


async def test_slow_hook_times_out_as_503(serve: StartServer) -> None:
    served = await serve(auth_timeout=0.05)
    served.hooks.delay = 1.0
    async with await _client(served) as client:
        response = await client.get(served.playlist_path)
    assert response.status_code == 503


async def test_unknown_playback_denial_is_404(served: Served) -> None:
    served.hooks.decision = PlayDecision(False, PlayDenial.UNKNOWN)
    async with await _client(served) as client:
        response = await client.get(served.playlist_path)
    assert response.status_code == 404


async def test_segments_need_no_authorization(served: Served) -> None:
    served.hooks.allowed_tokens = {"secret"}
    async with await _client(served) as client:
        response = await client.get(served.segment_path)
    assert response.status_code == 200
    assert served.hooks.calls == []


async def test_allow_decisions_are_cached_per_playback_and_token(serve: StartServer) -> None:
    # Long enough for eleven requests on a loaded CI machine (0.3 s was not, once).
    served = await serve(auth_ttl=2.0)
    async with await _client(served) as client:
        for _ in range(10):
            assert (await client.get(served.playlist_path, params={"token": "a"})).is_success
        assert len(served.hooks.calls) == 1
        assert (await client.get(served.playlist_path, params={"token": "b"})).is_success
        assert len(served.hooks.calls) == 2
        await asyncio.sleep(2.05)
        assert (await client.get(served.playlist_path, params={"token": "a"})).is_success
        assert len(served.hooks.calls) == 3


async def test_denials_are_not_cached(served: Served) -> None:
    served.hooks.allowed_tokens = set()
    async with await _client(served) as client:
        for _ in range(3):
            assert (await client.get(served.playlist_path)).status_code == 401
        served.hooks.allowed_tokens = None
        assert (await client.get(served.playlist_path)).status_code == 200
    assert len(served.hooks.calls) == 4


async def test_concurrent_first_polls_share_one_hook_call(served: Served) -> None:
    served.hooks.delay = 0.1
    async with await _client(served) as client:
        responses = await asyncio.gather(*(client.get(served.playlist_path) for _ in range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert len(served.hooks.calls) == 1


# -- HTTP/1.1 framing ------------------------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection(served: Served) -> None:
    reader, writer = await _open(served)
    try:
        for _ in range(5):
            writer.write(get(served.playlist_path))
            assert (await read_response(reader)).status == 200
            writer.write(get(served.segment_path))
            response = await read_response(reader)
            assert response.body == SEGMENT_BYTES
    finally:
        writer.close()
    assert served.server.stats.connections_total == 1


async def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    reader, writer = await _open(served)
    try:
        writer.write(
            get(served.segment_path)
            + get("/nope")
            + get(served.playlist_path, method="HEAD")
            + get(f"/hls/{PLAYBACK_ID}/{served.small_segment_name}")
        )
        first = await read_response(reader)
        second = await read_response(reader)
        third = await read_response(reader, head_only=True)
        fourth = await read_response(reader)
    finally:
        writer.close()
    assert (first.status, first.body) == (200, SEGMENT_BYTES)
    assert second.status == 404
    assert third.status == 200 and third.headers["content-type"].endswith("mpegurl")
    assert (fourth.status, fourth.body) == (200, b"\x47" * 188)


async def test_pipelined_requests_wait_behind_an_authorization(served: Served) -> None:
    served.hooks.delay = 0.1
    reader, writer = await _open(served)
    try:
        writer.write(get(served.playlist_path) + get(served.segment_path))
        first = await read_response(reader)
        second = await read_response(reader)
    finally:
        writer.close()
    assert first.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert second.body == SEGMENT_BYTES


async def test_a_slow_reader_gets_every_byte(served: Served) -> None:
    reader, writer = await _open(served)
    try:
        writer.write(get(served.segment_path) * 4)
        await asyncio.sleep(0.2)  # let the server hit its write buffer limit
        for _ in range(4):
            response = await read_response(reader)
            assert response.body == SEGMENT_BYTES
    finally:
        writer.close()


async def test_connection_close_is_honoured(served: Served) -> None:
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path, "Connection: close"))
    response = await read_response(reader)
    assert response.status == 200
    assert response.headers["connection"] == "close"
    assert await _closed_by_server(reader)
    writer.close()


async def test_http10_closes_unless_asked_to_keep_alive(served: Served) -> None:
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path, version="1.0"))
    assert (await read_response(reader)).status == 200
    assert await _closed_by_server(reader)
    writer.close()
    reader, writer = await _open(served)
    try:
        writer.write(get(served.playlist_path, "Connection: keep-alive", version="1.0"))
        response = await read_response(reader)
        assert response.headers["connection"] == "keep-alive"
        writer.write(get(served.playlist_path, "Connection: keep-alive", version="1.0"))
        assert (await read_response(reader)).status == 200
    finally:
        writer.close()


async def test_request_with_a_body_is_answered_then_closed(served: Served) -> None:
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path, "Content-Length: 5", method="POST") + b"hello")
    response = await read_response(reader)
    assert response.status == 405
    assert await _closed_by_server(reader)
    writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) + b"\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\nHost: x\n\n\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Content-Length: 1\r\n\r\n",
            400,
        ),
        (b"GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET http://x/hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET  /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000, 431),
    ],
    ids=[
        "tls-hello",
        "bare-lf",
        "space-before-colon",
        "obs-fold",
        "no-host",
        "two-hosts",
        "http2",
        "negative-length",
        "two-lengths",
        "chunked",
        "absolute-form",
        "double-space",
        "nul-in-value",
        "huge-head",
        "huge-unterminated-head",
    ],
)
async def test_malformed_requests_get_an_error_and_the_connection_closes(
    served: Served, request_bytes: bytes, status: int
) -> None:
    reader, writer = await _open(served)
    writer.write(request_bytes)
    response = await read_response(reader)
    assert response.status == status
    assert response.headers["connection"] == "close"
    assert await _closed_by_server(reader)
    writer.close()
    assert served.server.stats.bad_requests == 1


async def test_garbage_drops_only_that_client(served: Served) -> None:
    good_reader, good_writer = await _open(served)
    bad_reader, bad_writer = await _open(served)
    try:
        good_writer.write(get(served.playlist_path))
        assert (await read_response(good_reader)).status == 200
        bad_writer.write(b"\x00\xff garbage \r\n\r\n more garbage")
        assert (await read_response(bad_reader)).status == 400
        assert await _closed_by_server(bad_reader)
        good_writer.write(get(served.segment_path))
        assert (await read_response(good_reader)).body == SEGMENT_BYTES
        async with await _client(served) as client:
            assert (await client.get(served.playlist_path)).status_code == 200
    finally:
        good_writer.close()
        bad_writer.close()


async def test_leading_empty_lines_are_tolerated(served: Served) -> None:
    reader, writer = await _open(served)
    try:
        writer.write(b"\r\n" + get(served.playlist_path))
        assert (await read_response(reader)).status == 200
    finally:
        writer.close()


async def test_idle_connections_are_closed(serve: StartServer) -> None:
    served = await serve(limits=ConnectionLimits(idle_timeout_s=0.3))
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path))
    assert (await read_response(reader)).status == 200
    assert await _closed_by_server(reader)
    writer.close()
    assert served.server.stats.idle_closed == 1


async def test_a_half_sent_request_times_out(serve: StartServer) -> None:
    served = await serve(limits=ConnectionLimits(header_timeout_s=0.3, idle_timeout_s=30.0))
    reader, writer = await _open(served)
    writer.write(b"GET /hls/pb-1/index.m3u8 HTTP/1.1\r\nHost: x\r\n")
    for _ in range(5):
        await asyncio.sleep(0.1)
        writer.write(b"X-Slow: 1\r\n")  # trickling bytes does not keep it alive
    assert await _closed_by_server(reader)
    writer.close()


async def test_client_eof_after_a_request_still_gets_the_answer(served: Served) -> None:
    served.hooks.delay = 0.05
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path))
    writer.write_eof()
    assert (await read_response(reader)).status == 200
    assert await _closed_by_server(reader)
    writer.close()


# -- accounting and lifecycle ----------------------------------------------------------------


async def test_bytes_out_and_deliveries_are_counted_per_playback_id(served: Served) -> None:
    async with await _client(served) as client:
        playlist = await client.get(served.playlist_path, headers={"User-Agent": "hls.js"})
        segment = await client.get(served.segment_path, headers={"User-Agent": "hls.js"})
        await client.get("/hls/unknown/index.m3u8")
    stats = served.server.stats
    delivered = served.deliveries.records
    assert [(r[0], r[1], r[2]) for r in delivered] == [(PLAYBACK_ID, "127.0.0.1", "hls.js")] * 2
    assert delivered[1][3] > len(segment.content) > len(playlist.content)
    per_playback = stats.take_bytes_out()
    assert per_playback == {PLAYBACK_ID: delivered[0][3] + delivered[1][3]}
    assert stats.take_bytes_out() == {}
    assert stats.bytes_out > per_playback[PLAYBACK_ID]  # the 404 counts in the total only
    assert (stats.playlists, stats.segments, stats.not_found) == (1, 1, 1)


async def test_port_zero_binds_a_free_port_and_stop_closes_everything(
    serve: StartServer,
) -> None:
    served = await serve()
    port = served.server.port
    assert port > 0
    reader, writer = await _open(served)
    writer.write(get(served.playlist_path))
    assert (await read_response(reader)).status == 200
    assert served.server.stats.connections_open == 1
    await served.server.stop()
    assert await _closed_by_server(reader)
    writer.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_port_is_unknown_before_start(served: Served) -> None:
    from media_plane.servers.hls import HlsHttpServer

    server = HlsHttpServer(served.store, served.hooks)
    with pytest.raises(RuntimeError):
        _ = server.port
