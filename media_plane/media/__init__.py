"""The vocabulary every media-plane package shares: canonical tracks and packets (each
protocol converts to and from them, so protocols never talk to each other), the hooks a
host implements, the live-stream registry, the engine's counters and the error base.
"""

from media_plane.media.errors import MediaPlaneError
from media_plane.media.events import (
    EngineEvent,
    EngineEventKind,
    IngestHealth,
    MediaInfo,
    PublishDenied,
    StreamEnded,
    StreamStarted,
    ViewerEnded,
    ViewerProgress,
    ViewerStarted,
)
from media_plane.media.hooks import (
    EngineHooks,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.media.protocol import MediaProtocol
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
    "IngestHealth",
    "MediaInfo",
    "MediaPacket",
    "MediaPlaneError",
    "MediaProtocol",
    "PlayDecision",
    "PlayDenial",
    "PublishDecision",
    "PublishDenial",
    "PublishDenied",
    "PublishGrant",
    "StreamEnded",
    "StreamStarted",
    "StreamStats",
    "TrackKind",
    "VideoTrack",
    "ViewerEnded",
    "ViewerProgress",
    "ViewerStarted",
]
