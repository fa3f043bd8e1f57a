"""MPEG-TS (ISO/IEC 13818-1): canonical packets muxed into transport-stream segments."""

from media_plane.protocols.mpegts.muxer import MuxError, TsSegmentMuxer, UnsupportedTrackError

__all__ = ["MuxError", "TsSegmentMuxer", "UnsupportedTrackError"]
