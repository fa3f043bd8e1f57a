"""RTMP wire formats: handshake, chunk stream, AMF0 commands and FLV tag payloads, converted
to the engine's canonical packets (`media_feed`). Pure; the server is `servers.rtmp`.
"""

from media_plane.protocols.rtmp.errors import (
    AmfDecodeError,
    MediaFormatError,
    RtmpProtocolError,
    UnsupportedCodecError,
)

__all__ = [
    "AmfDecodeError",
    "MediaFormatError",
    "RtmpProtocolError",
    "UnsupportedCodecError",
]
