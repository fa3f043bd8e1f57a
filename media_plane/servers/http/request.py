"""Strict HTTP/1.1 request heads (RFC 9112) for the edge's servers. Pure.

Bytes in, a `RequestHead` or a `BadRequestError` out. Anything a lenient parser would have
to guess about (bare LF, obs-fold, whitespace before a colon, duplicate or invalid
Content-Length, a missing Host) is refused, so that what these servers and any proxy in
front of them think the request is cannot differ. Bodies are framed by Content-Length
only: a server that reads no bodies refuses Transfer-Encoding outright, one that does asks
for a Content-Length (411) and refuses bodies over its limit (413).
"""

from __future__ import annotations

import re

from media_plane.media.errors import MediaPlaneError

__all__ = ["MAX_HEAD_BYTES", "BadRequestError", "RequestHead", "parse_request_head"]

#: Largest request head accepted (request line plus header fields).
MAX_HEAD_BYTES = 8192
MAX_HEADER_FIELDS = 64

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
#: Field value: visible characters, spaces and tabs; no CR, LF or other controls.
_FIELD_LINE = re.compile(rb"(" + _TCHAR + rb"+):[ \t]*([\t\x20-\x7e\x80-\xff]*)")


class BadRequestError(MediaPlaneError, ValueError):
    """The request cannot be understood; the connection must be closed after answering."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


class RequestHead:
    __slots__ = (
        "authorization",
        "content_length",
        "content_type",
        "if_match",
        "keep_alive",
        "method",
        "origin",
        "target",
        "user_agent",
        "version",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: int,
        keep_alive: bool,
        authorization: bytes | None = None,
        content_length: int = 0,
        user_agent: bytes = b"",
        content_type: bytes = b"",
        origin: bytes = b"",
        if_match: bytes | None = None,
    ) -> None:
        self.method = method
        #: The request target as sent (origin form: path and query).
        self.target = target
        #: Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
        self.version = version
        self.keep_alive = keep_alive
        self.authorization = authorization
        self.content_length = content_length
        self.user_agent = user_agent
        #: The media type without its parameters.
        self.content_type = content_type
        self.origin = origin
        self.if_match = if_match

    @property
    def has_body(self) -> bool:
        """The request announced a body."""
        return self.content_length > 0

    @property
    def path(self) -> str:
        return self.target.partition(b"?")[0].decode("latin-1")

    @property
    def query(self) -> str:
        return self.target.partition(b"?")[2].decode("latin-1")


def parse_request_head(head: bytes, *, max_body_bytes: int = 0) -> RequestHead:
    """Parse a request head without its terminating empty line.

    `max_body_bytes` 0: the server reads no bodies; a request announcing one parses (its
    `has_body` is set, and the server closes the connection after answering)."""
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequestError("request head too large", 431)
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise BadRequestError("malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1" or minor not in (b"0", b"1"):
        raise BadRequestError("unsupported HTTP version", 505)
    if target[0] != 0x2F and not (target == b"*" and method == b"OPTIONS"):
        raise BadRequestError("request target must be in origin form")
    if len(lines) - 1 > MAX_HEADER_FIELDS:
        raise BadRequestError("too many header fields", 431)

    hosts = 0
    connection = b""
    content_length: bytes | None = None
    authorization: bytes | None = None
    user_agent = content_type = origin = b""
    if_match: bytes | None = None
    for line in lines[1:]:
        field = _FIELD_LINE.fullmatch(line)
        if field is None:
            raise BadRequestError("malformed header field")
        name = field[1].lower()
        value = field[2].rstrip(b" \t")
        if name == b"host":
            hosts += 1
        elif name == b"connection":
            connection = connection + b"," + value.lower() if connection else value.lower()
        elif name == b"authorization":
            authorization = value
        elif name == b"user-agent":
            user_agent = value
        elif name == b"content-length":
            if content_length is not None:
                raise BadRequestError("duplicate Content-Length")
            if not value.isdigit():
                raise BadRequestError("invalid Content-Length")
            content_length = value
        elif name == b"transfer-encoding":
            if not max_body_bytes:
                raise BadRequestError("request bodies are not accepted")
            raise BadRequestError("chunked bodies are not accepted; send Content-Length", 411)
        elif name == b"content-type":
            content_type = value.split(b";", 1)[0].strip()
        elif name == b"origin":
            origin = value
        elif name == b"if-match":
            if_match = value

    http11 = minor == b"1"
    if http11 and hosts != 1:
        raise BadRequestError("HTTP/1.1 needs exactly one Host header")
    if hosts > 1:
        raise BadRequestError("more than one Host header")
    length = int(content_length) if content_length is not None else 0
    if max_body_bytes and length > max_body_bytes:
        raise BadRequestError("request body too large", 413)
    tokens = {token.strip() for token in connection.split(b",")} if connection else set()
    keep_alive = b"close" not in tokens if http11 else b"keep-alive" in tokens
    return RequestHead(
        method,
        target,
        1 if http11 else 0,
        keep_alive,
        authorization,
        length,
        user_agent,
        content_type,
        origin,
        if_match,
    )
