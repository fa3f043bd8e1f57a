"""Strict HTTP/1.1 request heads (RFC 9112), for a server that takes no request bodies.

Pure: bytes in, a `RequestHead` or a `BadRequestError` out. Anything a lenient parser would
have to guess about (bare LF, obs-fold, whitespace before a colon, duplicate or invalid
Content-Length, Transfer-Encoding, a missing Host) is refused, so that what this server
and any proxy in front of it think the request is cannot differ.
"""

from __future__ import annotations

import re

__all__ = ["MAX_HEAD_BYTES", "BadRequestError", "RequestHead", "parse_request_head"]

#: Largest request head accepted (request line plus header fields).
MAX_HEAD_BYTES = 8192
MAX_HEADER_FIELDS = 64

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
#: Field value: visible characters, spaces and tabs; no CR, LF or other controls.
_FIELD_LINE = re.compile(rb"(" + _TCHAR + rb"+):[ \t]*([\t\x20-\x7e\x80-\xff]*)")


class BadRequestError(ValueError):
    """The request cannot be understood; the connection must be closed after answering."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


class RequestHead:
    __slots__ = (
        "authorization",
        "has_body",
        "keep_alive",
        "method",
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
        authorization: bytes | None,
        has_body: bool,
        user_agent: bytes = b"",
    ) -> None:
        self.method = method
        #: The request target as sent (origin form: path and query).
        self.target = target
        #: Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
        self.version = version
        self.keep_alive = keep_alive
        self.authorization = authorization
        #: The request announced a body; it is not read, so the connection must close.
        self.has_body = has_body
        self.user_agent = user_agent


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a request head without its terminating empty line."""
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
    user_agent = b""
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
            if content_length is not None or not value.isdigit():
                raise BadRequestError("invalid Content-Length")
            content_length = value
        elif name == b"transfer-encoding":
            raise BadRequestError("request bodies are not accepted")

    http11 = minor == b"1"
    if http11 and hosts != 1:
        raise BadRequestError("HTTP/1.1 needs exactly one Host header")
    if hosts > 1:
        raise BadRequestError("more than one Host header")
    tokens = {token.strip() for token in connection.split(b",")} if connection else set()
    keep_alive = b"close" not in tokens if http11 else b"keep-alive" in tokens
    has_body = content_length is not None and int(content_length) > 0
    return RequestHead(
        method, target, 1 if http11 else 0, keep_alive, authorization, has_body, user_agent
    )
