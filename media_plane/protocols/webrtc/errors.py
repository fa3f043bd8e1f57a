"""Why a WHIP or WHEP request was refused. The HTTP server maps each to one status.

WebRtcError
├── OfferError            the SDP offer is malformed or has no usable codec (400)
├── PublishRefusedError   authorize_publish said no, or the key is live (401/403/409/503)
├── PlayRefusedError      authorize_play said no, or the stream is not live (401/403/404)
└── SessionNotFoundError  no session at that location (404)
"""

from __future__ import annotations

from media_plane.engine.hooks import PlayDenial, PublishDenial

__all__ = [
    "IceRestartError",
    "OfferError",
    "PlayRefusedError",
    "PublishRefusedError",
    "SessionChangedError",
    "SessionNotFoundError",
    "WebRtcError",
]


class WebRtcError(Exception):
    """Base of the errors a WHIP/WHEP request can end in."""


class OfferError(WebRtcError, ValueError):
    """The offer cannot be answered; the message says why (sent to the client)."""


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
