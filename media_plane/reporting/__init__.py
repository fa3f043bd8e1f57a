"""What the engine reports to its host: publish lifecycles, ingest health and viewer
sessions of every protocol, as typed events (`media_plane.media.events`)."""

from media_plane.reporting.reporter import EngineReporter, StreamReport
from media_plane.reporting.viewer_sessions import ViewerSessions

__all__ = ["EngineReporter", "StreamReport", "ViewerSessions"]
