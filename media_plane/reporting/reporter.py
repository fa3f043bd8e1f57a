"""What the engine tells its host, assembled in one place: publish lifecycles and ingest
health per stream, viewer sessions of every protocol, and the byte counters behind them.

The protocol servers feed it (the registry's stream starts, the HLS server's deliveries,
WHEP sessions opening and closing); the engine's loops call `report_health` and
`sweep_viewers`; everything it reports goes out as typed events through `emit`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_plane.media.events import (
    EngineEvent,
    IngestHealth,
    ViewerEnded,
    ViewerProgress,
    ViewerStarted,
)
from media_plane.media.live_stream import LiveStream
from media_plane.reporting.ingest_meter import IngestMeter
from media_plane.reporting.stream_lifecycle import StreamLifecycle
from media_plane.reporting.viewer_sessions import ViewerChanges, ViewerSession, ViewerSessions

__all__ = ["EngineReporter", "StreamReport"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamReport:
    viewers: int
    bytes_in: int
    ingest_bitrate_bps: int
    #: The started event went out: media flows.
    live: bool


class EngineReporter:
    def __init__(
        self,
        emit: Callable[[EngineEvent], None],
        *,
        viewer_idle_s: float,
        viewer_progress_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._emit_hook = emit
        self._clock = clock
        self._wall = wall
        self._lifecycles: dict[str, StreamLifecycle] = {}
        self._bytes_in_finished = 0
        #: playback id -> stream id of every stream published here, so that viewers who
        #: outlive a publish are still attributed to it.
        self._stream_ids: dict[str, str] = {}
        self.viewers = ViewerSessions(viewer_idle_s, viewer_progress_s, self._report_viewers)

    # -- what the servers feed ---------------------------------------------------------

    def stream_started(self, stream: LiveStream) -> None:
        """Registry callback: attach the lifecycle that reports this publish."""
        meter = IngestMeter(self._clock())
        self._stream_ids[stream.playback_id] = stream.stream_id

        def finished() -> None:
            if self._lifecycles.get(stream.stream_id) is lifecycle:
                del self._lifecycles[stream.stream_id]
            self._bytes_in_finished += meter.total_bytes

        lifecycle = StreamLifecycle(stream, meter, self.emit, finished, self._wall)
        self._lifecycles[stream.stream_id] = lifecycle
        stream.attach(lifecycle)

    def delivered(self, playback_id: str, client_addr: str, user_agent: str, nbytes: int) -> None:
        """HLS delivery callback: a playlist or segment went to a viewer."""
        self.viewers.delivered(playback_id, client_addr, user_agent, nbytes, self._clock())

    # -- what the engine's loops call --------------------------------------------------

    def report_health(self) -> None:
        now = self._clock()
        for stream_id, lifecycle in list(self._lifecycles.items()):
            # Health follows the start event: a publish whose codecs are not known yet
            # has not started as far as analytics are concerned.
            if not lifecycle.started:
                continue
            stream = lifecycle.stream
            sample = lifecycle.meter.sample(now)
            self.emit(
                IngestHealth(
                    stream_id=stream_id,
                    occurred_at=self._wall(),
                    session_id=stream.session_id,
                    bitrate_bps=sample.bitrate_bps,
                    fps=sample.fps,
                    keyframe_interval_s=sample.keyframe_interval_s,
                    dropped_frames=0,
                    interval_ms=int(sample.interval_s * 1000),
                )
            )

    def sweep_viewers(self, *, end_all: bool = False) -> None:
        self._report_viewers(self.viewers.sweep(self._clock(), end_all=end_all))

    # -- what the host reads -----------------------------------------------------------

    def stream(self, stream: LiveStream) -> StreamReport:
        lifecycle = self._lifecycles.get(stream.stream_id)
        meter = lifecycle.meter if lifecycle is not None else None
        return StreamReport(
            viewers=self.viewers.viewers_of(stream.playback_id),
            bytes_in=meter.total_bytes if meter else 0,
            ingest_bitrate_bps=meter.last_bitrate_bps if meter else 0,
            live=lifecycle is not None and lifecycle.started,
        )

    def bytes_in(self) -> int:
        """Ingest bytes since the engine started, finished publishes included."""
        live = sum(lifecycle.meter.total_bytes for lifecycle in self._lifecycles.values())
        return self._bytes_in_finished + live

    def emit(self, event: EngineEvent) -> None:
        try:
            self._emit_hook(event)
        except Exception:
            logger.exception("the host's emit hook failed for %s", event.kind)

    # -- internals ---------------------------------------------------------------------

    def _stream_id_of(self, session: ViewerSession) -> str:
        # Stateless (HLS) sessions know only the playback id.
        return session.stream_id or self._stream_ids.get(session.playback_id, "")

    def _report_viewers(self, changes: ViewerChanges) -> None:
        now = self._wall()
        for session in changes.started:
            self.emit(
                ViewerStarted(
                    stream_id=self._stream_id_of(session),
                    occurred_at=now,
                    session_id=session.session_id,
                    protocol=session.protocol,
                    playback_id=session.playback_id,
                    client_addr=session.client_addr,
                    user_agent=session.user_agent,
                )
            )
        for session, nbytes, watched in changes.progressed:
            self.emit(
                ViewerProgress(
                    stream_id=self._stream_id_of(session),
                    occurred_at=now,
                    session_id=session.session_id,
                    protocol=session.protocol,
                    playback_id=session.playback_id,
                    bytes_sent=nbytes,
                    watched_ms=watched,
                )
            )
        for session, nbytes, watched in changes.ended:
            self.emit(
                ViewerEnded(
                    stream_id=self._stream_id_of(session),
                    occurred_at=now,
                    session_id=session.session_id,
                    protocol=session.protocol,
                    playback_id=session.playback_id,
                    bytes_sent=nbytes,
                    watched_ms=watched,
                    duration_ms=int((session.last_seen - session.started_at) * 1000),
                    reason=session.end_reason,
                )
            )
