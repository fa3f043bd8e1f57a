"""The vocabulary every media-plane package shares: canonical tracks and packets (each
protocol converts to and from them, so protocols never talk to each other), the hooks a
host implements, the live-stream registry, the engine's counters and the error base.
"""

from media_plane.media.errors import MediaPlaneError
from media_plane.media.hooks import (
    EngineEvent,
    EngineEventKind,
    EngineHooks,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.media.stats import EngineStats, StreamStats
from media_plane.media.units import (
    TIMEBASE_HZ,
    AudioTrack,
    Codec,
    MediaPacket,
    TrackKind,
    VideoTrack,
)

__all__ = [
    "TIMEBASE_HZ",
    "AudioTrack",
    "Codec",
    "EngineEvent",
    "EngineEventKind",
    "EngineHooks",
    "EngineStats",
    "MediaPacket",
    "MediaPlaneError",
    "PlayDecision",
    "PlayDenial",
    "PublishDecision",
    "PublishDenial",
    "PublishGrant",
    "StreamStats",
    "TrackKind",
    "VideoTrack",
]
