"""WebRTC for the edge (aiortc): WHIP ingest and WHEP playback sessions, with encoded
frames passed through in both directions (no per-viewer encode), and their signaling
over HTTP/1.1.

The engine wiring needs `WebRtcSessions`, `WebRtcOptions` and `WebRtcHttpServer`.
"""

from media_plane.servers.webrtc.errors import (
    IceRestartError,
    OfferError,
    PlayRefusedError,
    PublishRefusedError,
    SessionChangedError,
    SessionNotFoundError,
    WebRtcError,
)
from media_plane.servers.webrtc.negotiation import etag
from media_plane.servers.webrtc.records import (
    Answer,
    SessionStart,
    WebRtcOptions,
    WebRtcStats,
)
from media_plane.servers.webrtc.server import SIGNALING_LIMITS, WebRtcHttpServer, WebRtcHttpStats
from media_plane.servers.webrtc.sessions import ViewerSessionLog, WebRtcSessions

__all__ = [
    "SIGNALING_LIMITS",
    "Answer",
    "IceRestartError",
    "OfferError",
    "PlayRefusedError",
    "PublishRefusedError",
    "SessionChangedError",
    "SessionNotFoundError",
    "SessionStart",
    "ViewerSessionLog",
    "WebRtcError",
    "WebRtcHttpServer",
    "WebRtcHttpStats",
    "WebRtcOptions",
    "WebRtcSessions",
    "WebRtcStats",
    "etag",
]
