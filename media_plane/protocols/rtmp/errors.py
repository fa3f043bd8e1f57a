"""Errors of the RTMP package.

Every malformed or unsupported input raises `RtmpProtocolError` or one of its
subclasses, never anything else, so the session can drop that one connection cleanly:

    RtmpProtocolError           the peer broke the RTMP rules (handshake, chunks, commands)
    ├── AmfDecodeError          malformed AMF0 data
    └── MediaFormatError        a malformed FLV audio/video tag payload
        └── UnsupportedCodecError   well-formed, but a codec the engine does not take
"""

from __future__ import annotations

from media_plane.media.errors import MediaPlaneError

__all__ = ["AmfDecodeError", "MediaFormatError", "RtmpProtocolError", "UnsupportedCodecError"]


class RtmpProtocolError(MediaPlaneError):
    """The peer broke the RTMP, AMF0 or FLV rules; the connection is dropped."""


class AmfDecodeError(RtmpProtocolError):
    """Malformed AMF0 data."""


class MediaFormatError(RtmpProtocolError):
    """A malformed FLV audio or video tag payload."""


class UnsupportedCodecError(MediaFormatError):
    """A codec (or codec packet type) the engine cannot carry."""
