"""The edge's WHIP/WHEP signaling server: HTTP/1.1 on asyncio streams.

Signaling is a handful of small requests per session, so this favours plain code over the
HLS server's zero-copy protocol class. One task per connection, owned by the server;
keep-alive with an idle timeout; bodies framed by Content-Length up to 64 KiB. Connections
are capped per server and per client address at accept (`Listener`); a request head must
be complete `header_timeout_s` after accept (or, kept alive, after its first byte), empty
lines included. Routes and status codes are in `routes`; session work is `WebRtcSessions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from email.utils import formatdate

from media_plane.servers.http import (
    MAX_HEAD_BYTES,
    BadRequestError,
    ConnectionLimits,
    Listener,
    RequestHead,
    parse_request_head,
)
from media_plane.servers.http.status import REASONS
from media_plane.servers.webrtc.errors import (
    IceRestartError,
    OfferError,
    PlayRefusedError,
    PublishRefusedError,
    SessionChangedError,
    SessionNotFoundError,
    WebRtcError,
)
from media_plane.servers.webrtc.negotiation import etag
from media_plane.servers.webrtc.routes import (
    Action,
    play_denial_status,
    publish_denial_status,
    route,
    session_location,
)
from media_plane.servers.webrtc.sessions import WebRtcSessions

__all__ = ["SIGNALING_LIMITS", "WebRtcHttpServer", "WebRtcHttpStats"]

#: Signaling is a few short requests per session: fewer connections than HLS delivery.
SIGNALING_LIMITS = ConnectionLimits(max_connections=1000, max_connections_per_address=32)

logger = logging.getLogger(__name__)

TRICKLE_CONTENT_TYPE = "application/trickle-ice-sdpfrag"
_TRICKLE_CONTENT_TYPE_BYTES = TRICKLE_CONTENT_TYPE.encode()
_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch"),
]


@dataclass(slots=True)
class WebRtcHttpStats:
    requests: int = 0
    publishes: int = 0
    plays: int = 0
    refused: int = 0
    bad_requests: int = 0


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, message: str, *headers: tuple[str, str]) -> _Response:
    return _Response(status, (message + "\n").encode(), headers=headers)


class WebRtcHttpServer:
    def __init__(
        self,
        sessions: WebRtcSessions,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: ConnectionLimits = SIGNALING_LIMITS,
        body_timeout: float = 10.0,
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self._sessions = sessions
        self._max_body_bytes = max_body_bytes
        self.host = host
        self._requested_port = port
        self.limits = limits
        self._body_timeout = body_timeout
        self._server: Listener | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port = 0
        self.stats = WebRtcHttpStats()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("WebRTC HTTP server not started")
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("WebRTC HTTP server already started")
        listener = Listener(
            "WHIP/WHEP signaling", self.host, self._requested_port, self.limits, self._protocol
        )
        listener.start()
        self._server = listener
        self._port = listener.port
        logger.info("WHIP/WHEP listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        await server.stop()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def refused(self) -> int:
        """Connections closed at accept because a connection cap was reached."""
        return self._server.refused if self._server is not None else 0

    def _protocol(self, client: str) -> asyncio.BaseProtocol:
        reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES + 4)

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(self._accept(reader, writer, client))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

        return asyncio.StreamReaderProtocol(reader, connected)

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: str
    ) -> None:
        try:
            await self._serve(reader, writer, client)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            if self._server is not None:
                self._server.release(client)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client: str
    ) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        head_deadline: float | None = loop.time() + limits.header_timeout_s
        while True:
            try:
                if head_deadline is None:
                    # Kept alive: idle until the next request's first byte, which starts
                    # its head deadline.
                    async with asyncio.timeout(limits.idle_timeout_s):
                        first = await reader.readexactly(1)
                    # An empty line's byte: dropped, as the empty lines below are.
                    first = b"" if first in (b"\r", b"\n") else first
                    head_deadline = loop.time() + limits.header_timeout_s
                else:
                    first = b""
                async with asyncio.timeout_at(head_deadline):
                    raw = first + await reader.readuntil(b"\r\n\r\n")
                    # RFC 9112 2.2: empty lines before a request line are tolerated, within
                    # the same deadline.
                    head = raw[:-4].lstrip(b"\r\n")
                    while not head:
                        raw = await reader.readuntil(b"\r\n\r\n")
                        head = raw[:-4].lstrip(b"\r\n")
            except asyncio.LimitOverrunError:
                self._write(writer, _text(431, "request head too large"), keep_alive=False)
                return
            except asyncio.IncompleteReadError:
                return
            head_deadline = None
            self.stats.requests += 1
            try:
                request = parse_request_head(head, max_body_bytes=self._max_body_bytes)
            except BadRequestError as exc:
                self.stats.bad_requests += 1
                self._write(writer, _text(exc.status, str(exc)), keep_alive=False)
                return
            async with asyncio.timeout(self._body_timeout):
                body = await reader.readexactly(request.content_length)
            response = await self._respond(request, body, client)
            self._write(writer, response, keep_alive=request.keep_alive)
            await writer.drain()
            if not request.keep_alive:
                return

    async def _respond(self, request: RequestHead, body: bytes, client: str) -> _Response:
        target = route(request.method.decode("ascii"), request.path)
        action = target.action
        try:
            if action is Action.PREFLIGHT:
                return _Response(
                    204,
                    headers=(
                        ("Access-Control-Allow-Methods", target.allow),
                        ("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match"),
                        ("Access-Control-Max-Age", "86400"),
                        ("Allow", target.allow),
                        *self._links(),
                    ),
                )
            if action is Action.NOT_FOUND:
                return _text(404, "not found")
            if action is Action.METHOD_NOT_ALLOWED:
                return _text(405, "method not allowed", ("Allow", target.allow))
            if action is Action.TRICKLE_PUBLISH or action is Action.TRICKLE_PLAY:
                if request.content_type != _TRICKLE_CONTENT_TYPE_BYTES:
                    return _text(415, f"a PATCH must be Content-Type: {TRICKLE_CONTENT_TYPE}")
                role = "publish" if action is Action.TRICKLE_PUBLISH else "play"
                if_match = (
                    request.if_match.decode("latin-1") if request.if_match is not None else None
                )
                await self._sessions.trickle(target.value, role, body, if_match)
                return _Response(204)
            if action is Action.END_PUBLISH or action is Action.END_PLAY:
                role = "publish" if action is Action.END_PUBLISH else "play"
                await self._sessions.end(target.value, role)
                return _Response(200)
            if request.content_type != b"application/sdp":
                return _text(415, "the offer must be sent as Content-Type: application/sdp")
            user_agent = request.user_agent.decode("latin-1")
            if action is Action.PUBLISH:
                key = target.value or _bearer(request.authorization) or ""
                answer = await self._sessions.publish(key, body, client, user_agent)
                self.stats.publishes += 1
                location = session_location("whip", answer.session_id)
            else:
                answer = await self._sessions.play(
                    target.value,
                    _bearer(request.authorization),
                    body,
                    client,
                    user_agent,
                )
                self.stats.plays += 1
                location = session_location("whep", answer.session_id)
            return _Response(
                201,
                answer.sdp.encode(),
                "application/sdp",
                (
                    ("Location", location),
                    ("ETag", etag(answer.session_id)),
                    ("Accept-Patch", TRICKLE_CONTENT_TYPE),
                    *self._links(),
                ),
            )
        except OfferError as exc:
            self.stats.refused += 1
            return _text(400, str(exc))
        except PublishRefusedError as exc:
            self.stats.refused += 1
            status = publish_denial_status(exc.denial)
            extra = (("WWW-Authenticate", 'Bearer realm="whip"'),) if status == 401 else ()
            return _text(status, f"publish refused: {exc}", *extra)
        except PlayRefusedError as exc:
            self.stats.refused += 1
            status = play_denial_status(exc.denial)
            extra = (("WWW-Authenticate", 'Bearer realm="whep"'),) if status == 401 else ()
            return _text(status, f"play refused: {exc}", *extra)
        except SessionNotFoundError:
            return _text(404, "no such session")
        except SessionChangedError:
            return _text(412, "If-Match does not match the session's ETag")
        except IceRestartError as exc:
            return _text(405, str(exc), ("Allow", "DELETE, PATCH, OPTIONS"))
        except WebRtcError as exc:
            return _text(400, str(exc))
        except Exception:
            logger.exception("%r %s failed", request.method, action.name)
            return _text(500, "internal error")

    def _links(self) -> tuple[tuple[str, str], ...]:
        return tuple(("Link", value) for value in self._sessions.link_headers())

    def _write(
        self, writer: asyncio.StreamWriter, response: _Response, *, keep_alive: bool
    ) -> None:
        lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Error')}"]
        headers: list[tuple[str, str]] = [*_CORS, *response.headers]
        headers.append(("Date", formatdate(usegmt=True)))
        headers.append(("Cache-Control", "no-store"))
        if response.body or response.status not in (204,):
            headers.append(("Content-Type", response.content_type))
            headers.append(("Content-Length", str(len(response.body))))
        if not keep_alive:
            headers.append(("Connection", "close"))
        lines.extend(f"{name}: {value}" for name, value in headers)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)


def _bearer(authorization: bytes | None) -> str | None:
    scheme, _, credentials = (authorization or b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None
