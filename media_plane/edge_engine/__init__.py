"""The media engine as a host runs it: protocol servers, packagers and delivery wired around
one stream registry. This package (with the hook and event types it re-exports) is the
only part of media_plane an edge sidecar may import.
"""

from media_plane.edge_engine.engine import EngineSettings, MediaEngine
from media_plane.media import (
    EngineEvent,
    EngineEventKind,
    EngineHooks,
    EngineStats,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishGrant,
    StreamStats,
)

__all__ = [
    "EngineEvent",
    "EngineEventKind",
    "EngineHooks",
    "EngineSettings",
    "EngineStats",
    "MediaEngine",
    "PlayDecision",
    "PlayDenial",
    "PublishDecision",
    "PublishDenial",
    "PublishGrant",
    "StreamStats",
]
