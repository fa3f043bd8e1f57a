"""RTMP ingest: pure handshake, chunk stream, AMF0 and FLV parsing, and an asyncio server.

The engine wiring needs only `RtmpServer` (and `SessionOptions` to tune it); the pure
modules are public for tests and for other protocol packages that speak FLV.
"""

from media_plane.protocols.rtmp.errors import (
    AmfDecodeError,
    MediaFormatError,
    RtmpProtocolError,
    UnsupportedCodecError,
)
from media_plane.protocols.rtmp.server import RtmpServer
from media_plane.protocols.rtmp.session import SessionOptions

__all__ = [
    "AmfDecodeError",
    "MediaFormatError",
    "RtmpProtocolError",
    "RtmpServer",
    "SessionOptions",
    "UnsupportedCodecError",
]
