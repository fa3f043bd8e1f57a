"""HLS delivery over HTTP/1.1 for the edge: playlists and segments from the segment store."""

from media_plane.servers.hls.authorizer import PlayAuthorization, PlayAuthorizer
from media_plane.servers.hls.server import (
    DeliveryCallback,
    HlsContent,
    HlsHttpServer,
    HlsHttpStats,
)

__all__ = [
    "DeliveryCallback",
    "HlsContent",
    "HlsHttpServer",
    "HlsHttpStats",
    "PlayAuthorization",
    "PlayAuthorizer",
]
