"""WebRTC for the edge (aiortc): WHIP ingest and WHEP playback sessions, with encoded
frames passed through in both directions (no per-viewer encode).

The engine wiring needs `WebRtcSessions` and `WebRtcOptions`; the HTTP server maps the
errors. The pure modules (`offer`, `h264`, `vp8`, `ingest`) are public for tests.
"""

from media_plane.protocols.webrtc.errors import (
    IceRestartError,
    OfferError,
    PlayRefusedError,
    PublishRefusedError,
    SessionChangedError,
    SessionNotFoundError,
    WebRtcError,
)
from media_plane.protocols.webrtc.hls_transcode import HlsTranscoders
from media_plane.protocols.webrtc.negotiation import etag
from media_plane.protocols.webrtc.records import (
    Answer,
    SessionEnd,
    SessionStart,
    WebRtcOptions,
    WebRtcStats,
)
from media_plane.protocols.webrtc.sessions import WebRtcSessions

__all__ = [
    "Answer",
    "HlsTranscoders",
    "IceRestartError",
    "OfferError",
    "PlayRefusedError",
    "PublishRefusedError",
    "SessionChangedError",
    "SessionEnd",
    "SessionNotFoundError",
    "SessionStart",
    "WebRtcError",
    "WebRtcOptions",
    "WebRtcSessions",
    "WebRtcStats",
    "etag",
]
