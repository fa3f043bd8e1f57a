"""Errors of the WebRTC wire formats."""

from __future__ import annotations

from media_plane.media.errors import MediaPlaneError

__all__ = ["OfferError"]


class OfferError(MediaPlaneError, ValueError):
    """The offer cannot be answered; the message says why (sent to the client)."""
