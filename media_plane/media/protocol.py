"""The media protocols, one enum end to end: the engine, its hooks, the host's events and
the proto contracts (`tidecast.common.v1.MediaProtocol`) name the same values."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MediaProtocol"]


class MediaProtocol(StrEnum):
    RTMP = "rtmp"
    SRT = "srt"
    WHIP = "whip"
    HLS = "hls"
    LL_HLS = "ll-hls"
    WHEP = "whep"
