"""The HTTP/1.1 core the edge's servers share: one strict request-head parser, connection
caps and head deadlines (`ConnectionLimits`), and the listener that enforces the caps."""

from media_plane.servers.http.limits import AddressSlots, ConnectionLimits
from media_plane.servers.http.listener import Listener
from media_plane.servers.http.request import (
    MAX_HEAD_BYTES,
    BadRequestError,
    RequestHead,
    parse_request_head,
)

__all__ = [
    "MAX_HEAD_BYTES",
    "AddressSlots",
    "BadRequestError",
    "ConnectionLimits",
    "Listener",
    "RequestHead",
    "parse_request_head",
]
