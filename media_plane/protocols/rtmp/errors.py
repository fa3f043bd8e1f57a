"""Errors of the RTMP package. Every malformed input raises RtmpProtocolError (or a
subclass), never anything else, so a connection can be dropped cleanly."""

from __future__ import annotations


class RtmpProtocolError(Exception):
    """The peer broke the RTMP, AMF0 or FLV rules; the connection is dropped."""


class AmfDecodeError(RtmpProtocolError):
    """Malformed AMF0 data."""
