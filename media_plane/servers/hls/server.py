"""The edge's HLS delivery server: a small HTTP/1.1 server on asyncio.Protocol.

Routes: `GET|HEAD /hls/{playback_id}/index.m3u8` (authorized through the engine hook) and
`GET|HEAD /hls/{playback_id}/{segment}.ts`, plus CORS preflight `OPTIONS` on anything.
Nothing else: no request bodies, no ranges, no chunked encoding, no upgrades.

Built for throughput from one process: a served request is a strict parse of the head, two
dict lookups in the store and one or two `transport.write` calls with pre-built header
bytes and the stored body (a memoryview, so the transport never slices a copy of it).
Requests on a connection are answered in order; while one waits for the authorization
hook or the client is not reading, later pipelined requests wait in the buffer, and the
socket stops being read once that buffer is full.

Connections are capped per server and per client address at accept (`Listener`), and a
request head must be complete `header_timeout_s` after the connection was accepted (or,
kept alive, after the next request's first byte): every byte counts, empty lines too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Protocol, cast
from urllib.parse import parse_qsl

from media_plane.media.hooks import PlayDecision, PlayDenial
from media_plane.servers.hls.authorizer import PlayAuthorization, PlayAuthorizer
from media_plane.servers.http import (
    MAX_HEAD_BYTES,
    BadRequestError,
    ConnectionLimits,
    Listener,
    RequestHead,
    parse_request_head,
)
from media_plane.servers.http.status import REASONS_BYTES

__all__ = ["DeliveryCallback", "HlsContent", "HlsHttpServer", "HlsHttpStats"]

logger = logging.getLogger(__name__)

PLAYLIST_CONTENT_TYPE = b"application/vnd.apple.mpegurl"
SEGMENT_CONTENT_TYPE = b"video/mp2t"

_PLAYBACK_ID = re.compile(rb"[A-Za-z0-9_-]{1,128}")
_SEGMENT_NAME = re.compile(rb"[A-Za-z0-9_-]{1,128}\.ts")
#: Bytes of unanswered requests buffered per connection before it stops being read.
_MAX_PENDING_BYTES = 64 * 1024
#: Bodies up to this size are joined with their head into one write (one syscall).
_JOIN_BELOW = 16 * 1024
_CORS = b"Access-Control-Allow-Origin: *\r\n"
_ALLOW = b"GET, HEAD, OPTIONS"

_PLAYLIST_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: " + PLAYLIST_CONTENT_TYPE + b"\r\n"
    b"Cache-Control: max-age=1\r\n" + _CORS + b"Content-Length: "
)
_SEGMENT_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: " + SEGMENT_CONTENT_TYPE + b"\r\n"
    b"Cache-Control: public, max-age=86400, immutable\r\n" + _CORS + b"Content-Length: "
)
_PREFLIGHT_HEAD = (
    b"HTTP/1.1 204 No Content\r\n" + _CORS + b"Access-Control-Allow-Methods: " + _ALLOW + b"\r\n"
    b"Access-Control-Allow-Headers: Authorization, Range\r\n"
    b"Access-Control-Max-Age: 86400\r\nAllow: " + _ALLOW + b"\r\n"
)
_DENIAL_STATUS = {
    PlayDenial.TOKEN_REQUIRED: 401,
    PlayDenial.UNKNOWN: 404,
    PlayDenial.UNAVAILABLE: 503,
}


#: Called on the event loop after each playlist or segment response:
#: (playback_id, client_addr, user_agent, bytes written). Must return quickly.
DeliveryCallback = Callable[[str, str, str, int], None]


class HlsContent(Protocol):
    """What the server reads (`SegmentStore` in production)."""

    def playlist(self, playback_id: str) -> bytes | None: ...

    def segment(self, playback_id: str, name: str) -> bytes | None: ...


@dataclass(slots=True)
class HlsHttpStats:
    connections_open: int = 0
    connections_total: int = 0
    requests: int = 0
    playlists: int = 0
    segments: int = 0
    not_found: int = 0
    denied: int = 0
    bad_requests: int = 0
    #: Closed by the sweeper: idle too long, or a request head not complete in time.
    idle_closed: int = 0
    bytes_out: int = 0
    #: Response bytes (head and body) handed to the socket per playback id since the last
    #: `take_bytes_out()`. Bytes of a response the client hangs up on are still counted.
    bytes_out_by_playback: dict[str, int] = field(default_factory=dict)

    def take_bytes_out(self) -> dict[str, int]:
        """Per-playback-id bytes since the previous call (for the edge's bandwidth reports)."""
        taken, self.bytes_out_by_playback = self.bytes_out_by_playback, {}
        return taken


class _DateHeader:
    """The Date header line, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = 0
        self.date_line = b""

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self.date_line = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self.date_line


class HlsHttpServer:
    def __init__(
        self,
        store: HlsContent,
        hooks: PlayAuthorization,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auth_ttl: float = 5.0,
        auth_timeout: float = 5.0,
        limits: ConnectionLimits | None = None,
        backlog: int = 1024,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self.store = store
        self._on_delivery = on_delivery
        self.authorizer = PlayAuthorizer(hooks, ttl=auth_ttl, timeout=auth_timeout)
        self.host = host
        self._requested_port = port
        self.limits = limits if limits is not None else ConnectionLimits()
        self._idle_timeout = self.limits.idle_timeout_s
        self._header_timeout = self.limits.header_timeout_s
        self._backlog = backlog
        self.stats = HlsHttpStats()
        self._date = _DateHeader()
        self._server: Listener | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: set[_Connection] = set()
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (known after `start()`, also when constructed with port 0)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        listener = Listener(
            "HLS delivery",
            self.host,
            self._requested_port,
            self.limits,
            lambda address: _Connection(self, address),
            backlog=self._backlog,
        )
        listener.start()
        self._server = listener
        self._port = listener.port
        self._sweeper = asyncio.create_task(self._sweep(), name="hls-http-sweeper")
        logger.info("HLS delivery listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        await server.stop()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        for connection in list(self._connections):
            connection.abort()
        await self.authorizer.aclose()

    def _register(self, connection: _Connection) -> None:
        self._connections.add(connection)
        self.stats.connections_open += 1
        self.stats.connections_total += 1

    def _unregister(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            self.stats.connections_open -= 1
            if self._server is not None:
                self._server.release(connection.client)

    @property
    def refused(self) -> int:
        """Connections closed at accept because a connection cap was reached."""
        return self._server.refused if self._server is not None else 0

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        interval = max(0.25, min(self._idle_timeout, self._header_timeout) / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                now = loop.time()
                for connection in list(self._connections):
                    if connection.expired(now, self._idle_timeout, self._header_timeout):
                        self.stats.idle_closed += 1
                        connection.abort()
                self.authorizer.purge_expired()
            except Exception:
                logger.exception("HLS connection sweep failed")

    def _delivered(
        self, playback_id: str, client_addr: str, request: RequestHead, size: int
    ) -> None:
        stats = self.stats
        stats.bytes_out += size
        by_playback = stats.bytes_out_by_playback
        by_playback[playback_id] = by_playback.get(playback_id, 0) + size
        if self._on_delivery is not None:
            try:
                self._on_delivery(
                    playback_id, client_addr, request.user_agent.decode("latin-1"), size
                )
            except Exception:
                logger.exception("delivery callback failed")


class _Connection(asyncio.Protocol):
    """One client connection: parse, answer in order, apply back-pressure."""

    def __init__(self, server: HlsHttpServer, client: str) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        #: The client's IP address, as admitted by the listener.
        self.client = client
        # Later requests wait while an answer awaits the authorization hook, or while the
        # transport's write buffer is over its high-water mark (the client is not reading).
        self._waiting_auth = False
        self._write_paused = False
        self._read_paused = False
        self._closing = False
        self._eof = False
        self._last_active = 0.0
        self._head_started: float | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both stream sockets.
        self._transport = cast(asyncio.Transport, transport)
        self._last_active = self._loop.time()
        # The head deadline runs from accept: a client that sends nothing, or only empty
        # lines, holds its descriptor for `header_timeout_s` at most.
        self._head_started = self._last_active
        self._server._register(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._transport = None
        self._server._unregister(self)

    def data_received(self, data: bytes) -> None:
        self._last_active = self._loop.time()
        if self._head_started is None:
            self._head_started = self._last_active
        self._buffer += data
        if self._waiting_auth or self._write_paused:
            if len(self._buffer) > _MAX_PENDING_BYTES and not self._read_paused:
                self._read_paused = True
                assert self._transport is not None
                self._transport.pause_reading()
            return
        self._process()

    def eof_received(self) -> bool | None:
        # The client is done sending. Answer what it asked, then close; returning False lets
        # the transport close itself once its write buffer drains.
        self._eof = True
        return self._waiting_auth or self._write_paused

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._last_active = self._loop.time()
        self._resume()

    # -- lifecycle ------------------------------------------------------------------------

    def expired(self, now: float, idle_timeout: float, header_timeout: float) -> bool:
        if self._waiting_auth:
            return False
        if self._head_started is not None and now - self._head_started > header_timeout:
            return True
        return now - self._last_active > idle_timeout

    def abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()

    def _close(self) -> None:
        self._closing = True
        transport = self._transport
        if transport is not None:
            transport.close()

    def _resume(self) -> None:
        if self._closing or self._waiting_auth or self._write_paused:
            return
        self._process()
        if self._eof and not (self._waiting_auth or self._write_paused):
            self._close()
            return
        if self._read_paused and not (self._waiting_auth or self._write_paused):
            self._read_paused = False
            if self._transport is not None:
                self._transport.resume_reading()

    # -- requests ---------------------------------------------------------------------------

    def _process(self) -> None:
        buffer = self._buffer
        while buffer and not (self._closing or self._waiting_auth or self._write_paused):
            if buffer.startswith(b"\r\n"):
                # RFC 9112 2.2: tolerate empty lines before a request line.
                del buffer[:2]
                continue
            end = buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    self._reject(BadRequestError("request head too large", 431))
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            # Pipelined bytes already buffered start the next head's deadline now.
            self._head_started = self._loop.time() if buffer else None
            try:
                request = parse_request_head(head)
            except BadRequestError as exc:
                self._reject(exc)
                return
            self._server.stats.requests += 1
            self._dispatch(request)

    def _dispatch(self, request: RequestHead) -> None:
        method = request.method
        if method == b"OPTIONS":
            self._send_head(request, _PREFLIGHT_HEAD, b"", None, send_body=False)
            return
        if method != b"GET" and method != b"HEAD":
            self._error(request, 405, b"Allow: " + _ALLOW + b"\r\n")
            return
        target = request.target
        path, _, query = target.partition(b"?")
        if not path.startswith(b"/hls/"):
            self._error(request, 404)
            return
        raw_id, slash, leaf = path[5:].partition(b"/")
        if not slash or _PLAYBACK_ID.fullmatch(raw_id) is None:
            self._error(request, 404)
            return
        playback_id = raw_id.decode("ascii")
        store = self._server.store
        if leaf == b"index.m3u8":
            body = store.playlist(playback_id)
            if body is None:
                self._error(request, 404)
                return
            token = _token(query, request.authorization)
            authorizer = self._server.authorizer
            if authorizer.cached_allow(playback_id, token):
                self._send_playlist(request, playback_id, body)
                return
            self._waiting_auth = True
            future = authorizer.authorize(playback_id, token, self.client)
            future.add_done_callback(lambda done: self._authorized(request, playback_id, done))
            return
        if _SEGMENT_NAME.fullmatch(leaf) is None:
            self._error(request, 404)
            return
        segment = store.segment(playback_id, leaf.decode("ascii"))
        if segment is None:
            self._error(request, 404)
            return
        self._server.stats.segments += 1
        self._send_head(request, _SEGMENT_HEAD, segment, playback_id)

    def _authorized(
        self, request: RequestHead, playback_id: str, done: asyncio.Future[PlayDecision]
    ) -> None:
        self._waiting_auth = False
        if self._closing or self._transport is None:
            return
        if done.cancelled():
            self._error(request, 503)
        else:
            decision = done.result()
            if decision.allowed:
                body = self._server.store.playlist(playback_id)
                if body is None:
                    self._error(request, 404)
                else:
                    self._send_playlist(request, playback_id, body)
            else:
                self._server.stats.denied += 1
                status = _DENIAL_STATUS.get(decision.denial, 403) if decision.denial else 403
                extra = b'WWW-Authenticate: Bearer realm="hls"\r\n' if status == 401 else b""
                self._error(request, status, extra)
        self._resume()

    def _send_playlist(self, request: RequestHead, playback_id: str, body: bytes) -> None:
        self._server.stats.playlists += 1
        self._send_head(request, _PLAYLIST_HEAD, body, playback_id)

    def _send_head(
        self,
        request: RequestHead,
        prefix: bytes,
        body: bytes,
        playback_id: str | None,
        *,
        send_body: bool = True,
    ) -> None:
        """Write a response whose head starts with `prefix` (up to "Content-Length: ")."""
        transport = self._transport
        if transport is None:
            return
        keep_alive = request.keep_alive and not request.has_body
        length = b"%d\r\n" % len(body) if send_body else b""
        head = b"".join(
            (
                prefix,
                length,
                self._server._date.date(),
                _connection_line(request, keep_alive),
                b"\r\n",
            )
        )
        size = len(head)
        if not send_body or request.method == b"HEAD" or not body:
            transport.write(head)
        elif len(body) < _JOIN_BELOW:
            transport.write(head + body)
            size += len(body)
        else:
            transport.write(head)
            transport.write(memoryview(body))
            size += len(body)
        if playback_id is not None:
            self._server._delivered(playback_id, self.client, request, size)
        else:
            self._server.stats.bytes_out += size
        if not keep_alive:
            self._close()

    def _error(self, request: RequestHead, status: int, extra: bytes = b"") -> None:
        if status == 404:
            self._server.stats.not_found += 1
        body = REASONS_BYTES[status] + b"\n"
        prefix = b"".join(
            (
                b"HTTP/1.1 %d " % status,
                REASONS_BYTES[status],
                b"\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n",
                _CORS,
                extra,
                b"Content-Length: ",
            )
        )
        self._send_head(request, prefix, body, None)

    def _reject(self, error: BadRequestError) -> None:
        """Answer a request that could not be parsed, then close: framing is lost."""
        self._server.stats.bad_requests += 1
        transport = self._transport
        self._buffer.clear()
        if transport is None:
            return
        status = error.status if error.status in REASONS_BYTES else 400
        body = REASONS_BYTES[status] + b"\n"
        transport.write(
            b"".join(
                (
                    b"HTTP/1.1 %d " % status,
                    REASONS_BYTES[status],
                    b"\r\nContent-Type: text/plain\r\n",
                    _CORS,
                    b"Content-Length: %d\r\n" % len(body),
                    self._server._date.date(),
                    b"Connection: close\r\n\r\n",
                    body,
                )
            )
        )
        self._close()


def _connection_line(request: RequestHead, keep_alive: bool) -> bytes:
    if not keep_alive:
        return b"Connection: close\r\n"
    if request.version == 0:
        return b"Connection: keep-alive\r\n"
    return b""


def _token(query: bytes, authorization: bytes | None) -> str | None:
    """The viewer's token: `?token=` wins over `Authorization: Bearer`."""
    if query and b"token=" in query:
        for name, value in parse_qsl(query.decode("latin-1")):
            if name == "token" and value:
                return value
    if authorization is not None:
        scheme, _, credentials = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and credentials.strip():
            return credentials.strip().decode("latin-1")
    return None
