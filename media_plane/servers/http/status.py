"""The reason phrases of the statuses the edge's servers answer with (RFC 9110 15)."""

from __future__ import annotations

__all__ = ["REASONS", "REASONS_BYTES"]

REASONS: dict[int, str] = {
    200: "OK",
    201: "Created",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
REASONS_BYTES: dict[int, bytes] = {status: text.encode() for status, text in REASONS.items()}
