"""The HTTP/1.1 core the edge's servers share: one strict request-head parser."""

from media_plane.servers.http.request import (
    MAX_HEAD_BYTES,
    BadRequestError,
    RequestHead,
    parse_request_head,
)

__all__ = ["MAX_HEAD_BYTES", "BadRequestError", "RequestHead", "parse_request_head"]
