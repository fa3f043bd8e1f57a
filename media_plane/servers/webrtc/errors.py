"""Why a WHIP or WHEP request was refused. The HTTP server maps each to one status.

OfferError (protocols.webrtc)  the SDP offer is malformed or has no usable codec (400)
WebRtcError
├── PublishRefusedError   authorize_publish said no, or the key is live (401/403/409/503)
├── PlayRefusedError      authorize_play said no, or the stream is not live (401/403/404)
└── SessionNotFoundError  no session at that location (404)
"""

from __future__ import annotations

from media_plane.media.errors import MediaPlaneError
from media_plane.media.hooks import PlayDenial, PublishDenial
from media_plane.protocols.webrtc.errors import OfferError

__all__ = [
    "IceRestartError",
    "OfferError",
    "PlayRefusedError",
    "PublishRefusedError",
    "SessionChangedError",
    "SessionNotFoundError",
    "WebRtcError",
]


class WebRtcError(MediaPlaneError):
    """Base of the errors a WHIP/WHEP request can end in."""


class PublishRefusedError(WebRtcError):
    def __init__(self, denial: PublishDenial, message: str = "") -> None:
        super().__init__(message or denial.value)
        self.denial = denial


class PlayRefusedError(WebRtcError):
    def __init__(self, denial: PlayDenial, message: str = "") -> None:
        super().__init__(message or denial.value)
        self.denial = denial


class SessionNotFoundError(WebRtcError):
    pass


class SessionChangedError(WebRtcError):
    pass


class IceRestartError(WebRtcError):
    pass
