"""The media plane's fixtures. They live beside the helpers they build on, in the plane's
helper modules; this one conftest makes them available to every media-plane test."""

from tests.media_plane.broadcasts import broadcast
from tests.media_plane.hls_server import serve, served
from tests.media_plane.rtmp_rig import make_rig, publishers, rig
from tests.media_plane.webrtc_edge import edge

__all__ = [
    "broadcast",
    "edge",
    "make_rig",
    "publishers",
    "rig",
    "serve",
    "served",
]
