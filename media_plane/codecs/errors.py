"""Errors of the codec helpers."""

from __future__ import annotations

from media_plane.media.errors import MediaPlaneError

__all__ = ["CodecError"]


class CodecError(MediaPlaneError, ValueError):
    """A decoder configuration or payload that cannot be read or converted."""
