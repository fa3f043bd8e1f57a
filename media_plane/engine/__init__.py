"""The engine core every protocol builds on: hooks a host implements, events it reports,
the live-stream registry, and counters. The assembled engine is `media_plane.edge_engine`.
"""

from media_plane.engine.hooks import (
    EngineEvent,
    EngineEventKind,
    EngineHooks,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.engine.stats import EngineStats, StreamStats

__all__ = [
    "EngineEvent",
    "EngineEventKind",
    "EngineHooks",
    "EngineStats",
    "PlayDecision",
    "PlayDenial",
    "PublishDecision",
    "PublishDenial",
    "PublishGrant",
    "StreamStats",
]
