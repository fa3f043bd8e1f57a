"""Canonical media types shared by every protocol package.

Each protocol converts what it receives into these types (ingest) and converts them back
into its own wire format (egress), so protocols never talk to each other directly.
"""

from media_plane.media.units import (
    TIMEBASE_HZ,
    AudioTrack,
    Codec,
    MediaPacket,
    TrackKind,
    VideoTrack,
)

__all__ = ["TIMEBASE_HZ", "AudioTrack", "Codec", "MediaPacket", "TrackKind", "VideoTrack"]
