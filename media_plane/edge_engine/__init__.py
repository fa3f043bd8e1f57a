"""The media engine as a host runs it: protocol servers, pipelines and reporting wired
around one stream registry. This package (with the hook, event and protocol types it
re-exports) is the only part of media_plane an edge sidecar may import.
"""

from media_plane.edge_engine.engine import EngineSettings, MediaEngine
from media_plane.media import (
    EngineEvent,
    EngineEventKind,
    EngineHooks,
    EngineStats,
    IngestHealth,
    MediaInfo,
    MediaProtocol,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishDenied,
    PublishGrant,
    StreamEnded,
    StreamStarted,
    StreamStats,
    ViewerEnded,
    ViewerProgress,
    ViewerStarted,
)
from media_plane.servers.http import ConnectionLimits
from media_plane.servers.webrtc import SIGNALING_LIMITS

__all__ = [
    "SIGNALING_LIMITS",
    "ConnectionLimits",
    "EngineEvent",
    "EngineEventKind",
    "EngineHooks",
    "EngineSettings",
    "EngineStats",
    "IngestHealth",
    "MediaEngine",
    "MediaInfo",
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
    "ViewerEnded",
    "ViewerProgress",
    "ViewerStarted",
]
