"""HTTP/1.1 requests with small bodies (SDP offers), for the WHIP/WHEP signaling server.

Pure: a head's bytes in, a `Request` (without its body) or a `BadRequestError` out. Bodies
are framed by Content-Length only; chunked bodies, folded or duplicate framing headers and
a missing Host are refused, so that a proxy in front cannot disagree about the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_BODY_BYTES", "MAX_HEAD_BYTES", "BadRequestError", "Request", "parse_head"]

MAX_HEAD_BYTES = 8192
MAX_BODY_BYTES = 64 * 1024
_MAX_FIELDS = 64

_TCHAR = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]"
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/1\.([01])")
_FIELD_LINE = re.compile(rb"(" + _TCHAR + rb"+):[ \t]*([\t\x20-\x7e\x80-\xff]*)")


class BadRequestError(ValueError):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    http11: bool
    keep_alive: bool
    content_length: int
    content_type: str
    authorization: str
    user_agent: str
    origin: str
    if_match: str | None = None


def parse_head(head: bytes) -> Request:
    """Parse a request head (without the empty line that ends it)."""
    if len(head) > MAX_HEAD_BYTES:
        raise BadRequestError("request head too large", 431)
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise BadRequestError("malformed request line")
    method, target, minor = match.groups()
    if not (target.startswith(b"/") or (target == b"*" and method == b"OPTIONS")):
        raise BadRequestError("request target must be in origin form")
    if len(lines) - 1 > _MAX_FIELDS:
        raise BadRequestError("too many header fields", 431)
    fields: dict[bytes, bytes] = {}
    hosts = 0
    for line in lines[1:]:
        field = _FIELD_LINE.fullmatch(line)
        if field is None:
            raise BadRequestError("malformed header field")
        name, value = field[1].lower(), field[2].rstrip(b" \t")
        if name == b"host":
            hosts += 1
        elif name == b"transfer-encoding":
            raise BadRequestError("chunked bodies are not accepted; send Content-Length", 411)
        elif name == b"content-length" and name in fields:
            raise BadRequestError("duplicate Content-Length")
        fields[name] = value
    http11 = minor == b"1"
    if hosts != 1 and (http11 or hosts > 1):
        raise BadRequestError("exactly one Host header is required")
    raw_length = fields.get(b"content-length", b"0")
    if not raw_length.isdigit():
        raise BadRequestError("invalid Content-Length")
    length = int(raw_length)
    if length > MAX_BODY_BYTES:
        raise BadRequestError("request body too large", 413)
    tokens = {t.strip() for t in fields.get(b"connection", b"").lower().split(b",")}
    keep_alive = b"close" not in tokens if http11 else b"keep-alive" in tokens
    path, _, query = target.partition(b"?")
    return Request(
        method=method.decode("ascii"),
        path=path.decode("latin-1"),
        query=query.decode("latin-1"),
        http11=http11,
        keep_alive=keep_alive,
        content_length=length,
        content_type=fields.get(b"content-type", b"").decode("latin-1").split(";")[0].strip(),
        authorization=fields.get(b"authorization", b"").decode("latin-1"),
        user_agent=fields.get(b"user-agent", b"").decode("latin-1"),
        origin=fields.get(b"origin", b"").decode("latin-1"),
        if_match=fields[b"if-match"].decode("latin-1") if b"if-match" in fields else None,
    )
