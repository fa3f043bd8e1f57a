"""The media engine: protocol servers, packagers and outputs wired around one registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_plane.media import AudioTrack, MediaPacket, VideoTrack
from media_plane.media.hooks import EngineEvent, EngineEventKind, EngineHooks
from media_plane.media.live_stream import LiveStream, StreamRegistry
from media_plane.media.stats import EngineStats, StreamStats
from media_plane.pipelines.remux import HlsOutput
from media_plane.pipelines.transcode import HlsTranscoders
from media_plane.reporting.ingest_meter import IngestMeter
from media_plane.reporting.viewer_sessions import ViewerChanges, ViewerSessions
from media_plane.servers.hls import HlsHttpServer
from media_plane.servers.rtmp import RtmpServer
from media_plane.servers.webrtc import (
    SessionEnd,
    SessionStart,
    WebRtcHttpServer,
    WebRtcOptions,
    WebRtcSessions,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSettings:
    host: str = "127.0.0.1"
    rtmp_port: int = 1935
    http_port: int = 8088
    segment_duration_s: float = 2.0
    health_interval_s: float = 10.0
    #: A viewer that sent no request for this long has left.
    viewer_idle_s: float = 20.0
    viewer_progress_s: float = 30.0
    #: WHIP ingest and WHEP playback (signaling on `webrtc_port`, media over UDP). Off
    #: unless the host turns it on, so hosts that predate it bind no extra port.
    webrtc_enabled: bool = False
    webrtc_port: int = 8089
    #: Addresses offered as ICE host candidates. Empty: every interface address except
    #: loopback (aioice's choice). Loopback must be listed to be used (tests, one host).
    ice_host_addresses: tuple[str, ...] = ()
    #: STUN/TURN URLs used by the edge and advertised to clients in `Link` headers.
    ice_servers: tuple[str, ...] = ()
    #: A WebRTC peer that has not connected by then is dropped.
    webrtc_connect_timeout_s: float = 15.0


class _Lifecycle:
    """Reports a stream's start and its end.

    A stream starts when media flows (its codecs are known from the first frames), not
    when the publish is accepted: a WHIP publish holds its key from the answer on, but a
    peer that never connects must not look live. A publish that ends without media ends
    silently: no started event, so no ended event either."""

    def __init__(
        self,
        stream: LiveStream,
        meter: IngestMeter,
        emit: Callable[[EngineEvent], None],
        finished: Callable[[], None],
    ) -> None:
        self._stream = stream
        self._meter = meter
        self._emit = emit
        self._finished = finished
        self.started = False
        #: Wall-clock time of the started event: the stream's duration counts from it.
        self.started_at = 0.0

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self._meter.on_tracks(video, audio)
        self._announce()

    def on_packet(self, packet: MediaPacket) -> None:
        self._meter.on_packet(packet)

    def _announce(self) -> None:
        if self.started:
            return
        self.started = True
        self.started_at = time.time()
        stream, video, audio = self._stream, self._meter.video, self._meter.audio
        self._emit(
            EngineEvent(
                EngineEventKind.STREAM_STARTED,
                stream.stream_id,
                self.started_at,
                {
                    "session_id": stream.session_id,
                    "protocol": stream.protocol,
                    "client_addr": stream.client_addr,
                    "video_codec": video.codec.value if video else "",
                    "width": video.width if video else 0,
                    "height": video.height if video else 0,
                    "audio_codec": audio.codec.value if audio else "",
                    "audio_sample_rate": audio.sample_rate if audio else 0,
                    "audio_channels": audio.channels if audio else 0,
                },
            )
        )

    def on_end(self) -> None:
        if not self.started:
            self._finished()
            return
        stream = self._stream
        self._emit(
            EngineEvent(
                EngineEventKind.STREAM_ENDED,
                stream.stream_id,
                time.time(),
                {
                    "session_id": stream.session_id,
                    "protocol": stream.protocol,
                    "reason": stream.end_reason,
                    "duration_ms": int((time.time() - self.started_at) * 1000),
                    "bytes_in": self._meter.total_bytes,
                },
            )
        )
        self._finished()


class MediaEngine:
    def __init__(self, settings: EngineSettings, hooks: EngineHooks) -> None:
        self.settings = settings
        self.hooks = hooks
        self.registry = StreamRegistry()
        self._meters: dict[str, IngestMeter] = {}
        self._lifecycles: dict[str, _Lifecycle] = {}
        self._bytes_in_finished = 0
        #: playback id -> stream id of every stream published here, so that viewers who
        #: outlive a publish are still attributed to it.
        self._stream_ids: dict[str, str] = {}
        #: WHEP viewers by playback id.
        self._webrtc_viewers: dict[str, int] = {}
        #: WHEP session id -> (monotonic time, bytes sent) at its last start/progress event.
        self._webrtc_reported: dict[str, tuple[float, int]] = {}
        self.viewers = ViewerSessions(settings.viewer_idle_s, settings.viewer_progress_s)
        self.registry.on_start(self._stream_started)
        #: WHIP streams reach HLS through one transcode per stream where the codec needs it.
        self._hls_transcoders = HlsTranscoders() if settings.webrtc_enabled else None
        self.hls = HlsOutput(
            self.registry,
            adapt=self._hls_transcoders.adapt if self._hls_transcoders is not None else None,
        )
        self.rtmp = RtmpServer(self.registry, hooks, settings.host, settings.rtmp_port)
        self.http = HlsHttpServer(
            self.hls.store, hooks, settings.host, settings.http_port, on_delivery=self._delivered
        )
        self.webrtc: WebRtcSessions | None = None
        self.webrtc_http: WebRtcHttpServer | None = None
        if settings.webrtc_enabled:
            self.webrtc = WebRtcSessions(
                self.registry,
                hooks,
                WebRtcOptions(
                    host_addresses=settings.ice_host_addresses,
                    ice_servers=settings.ice_servers,
                    connect_timeout_s=settings.webrtc_connect_timeout_s,
                ),
                on_start=self._webrtc_session_started,
                on_end=self._webrtc_session_ended,
            )
            self.webrtc_http = WebRtcHttpServer(self.webrtc, settings.host, settings.webrtc_port)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def webrtc_port(self) -> int:
        if self.webrtc_http is None:
            raise RuntimeError("WebRTC is disabled")
        return self.webrtc_http.port

    @property
    def rtmp_port(self) -> int:
        return self.rtmp.port

    @property
    def http_port(self) -> int:
        return self.http.port

    async def start(self) -> None:
        await self.hls.start()
        await self.http.start()
        if self.webrtc is not None and self.webrtc_http is not None:
            await self.webrtc.start()
            await self.webrtc_http.start()
        await self.rtmp.start()
        self._tasks = [
            asyncio.create_task(self._health_loop(), name="engine-ingest-health"),
            asyncio.create_task(self._viewer_loop(), name="engine-viewer-sessions"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.rtmp.stop()
        if self.webrtc is not None and self.webrtc_http is not None:
            await self.webrtc_http.stop()
            await self.webrtc.stop()
        for stream in self.registry.live():
            self.registry.finish(stream, "node_stopped")
        self._report_viewers(self.viewers.sweep(time.monotonic(), end_all=True))
        await self.http.stop()
        await self.hls.stop()
        if self._hls_transcoders is not None:
            await self._hls_transcoders.stop()

    def stats(self) -> EngineStats:
        streams = []
        live_bytes = 0
        for stream in self.registry.live():
            meter = self._meters.get(stream.stream_id)
            lifecycle = self._lifecycles.get(stream.stream_id)
            live_bytes += meter.total_bytes if meter else 0
            streams.append(
                StreamStats(
                    stream_id=stream.stream_id,
                    playback_id=stream.playback_id,
                    protocol=stream.protocol,
                    viewers=self.viewers.viewers_of(stream.playback_id)
                    + self._webrtc_viewers.get(stream.playback_id, 0),
                    bytes_in=meter.total_bytes if meter else 0,
                    ingest_bitrate_bps=meter.last_bitrate_bps if meter else 0,
                    live=lifecycle is not None and lifecycle.started,
                )
            )
        webrtc = self.webrtc.stats() if self.webrtc is not None else None
        return EngineStats(
            streams=streams,
            viewers=self.viewers.count() + sum(self._webrtc_viewers.values()),
            bytes_in=self._bytes_in_finished + live_bytes,
            bytes_out=self.http.stats.bytes_out + (webrtc.bytes_out if webrtc else 0),
            webrtc_publishers=webrtc.publishers if webrtc else 0,
            webrtc_viewers=webrtc.viewers if webrtc else 0,
            webrtc_sessions_ended=webrtc.ended if webrtc else {},
        )

    # -- internals --------------------------------------------------------------------

    def _emit(self, event: EngineEvent) -> None:
        try:
            self.hooks.emit(event)
        except Exception:
            logger.exception("the host's emit hook failed for %s", event.kind)

    def _stream_started(self, stream: LiveStream) -> None:
        meter = IngestMeter(time.monotonic())
        self._meters[stream.stream_id] = meter
        self._stream_ids[stream.playback_id] = stream.stream_id

        def finished() -> None:
            if self._meters.get(stream.stream_id) is meter:
                del self._meters[stream.stream_id]
                self._lifecycles.pop(stream.stream_id, None)
            self._bytes_in_finished += meter.total_bytes

        lifecycle = _Lifecycle(stream, meter, self._emit, finished)
        self._lifecycles[stream.stream_id] = lifecycle
        stream.attach(lifecycle)

    def _webrtc_session_started(self, start: SessionStart) -> None:
        if start.role != "play":
            return  # a publish reports through the stream lifecycle
        playback_id = start.playback_id
        self._webrtc_viewers[playback_id] = self._webrtc_viewers.get(playback_id, 0) + 1
        self._webrtc_reported[start.session_id] = (time.monotonic(), 0)
        self._emit(
            EngineEvent(
                EngineEventKind.VIEWER_STARTED,
                start.stream_id,
                time.time(),
                {
                    "session_id": start.session_id,
                    "protocol": "whep",
                    "client_addr": start.client_addr,
                    "user_agent": start.user_agent,
                    "playback_id": playback_id,
                },
            )
        )

    def _webrtc_session_ended(self, end: SessionEnd) -> None:
        start = end.start
        if start.role != "play":
            return
        playback_id = start.playback_id
        left = self._webrtc_viewers.get(playback_id, 0) - 1
        if left > 0:
            self._webrtc_viewers[playback_id] = left
        else:
            self._webrtc_viewers.pop(playback_id, None)
        # Like HLS viewers: bytes and watch time since the last progress event.
        reported_at, reported_bytes = self._webrtc_reported.pop(
            start.session_id, (time.monotonic() - end.duration_s, 0)
        )
        duration_ms = int(end.duration_s * 1000)
        self._emit(
            EngineEvent(
                EngineEventKind.VIEWER_ENDED,
                start.stream_id,
                time.time(),
                {
                    "session_id": start.session_id,
                    "protocol": "whep",
                    "bytes_sent": max(0, end.bytes_sent - reported_bytes),
                    "watched_ms": int((time.monotonic() - reported_at) * 1000),
                    "duration_ms": duration_ms,
                    "playback_id": playback_id,
                    "reason": end.reason,
                },
            )
        )

    def _delivered(self, playback_id: str, client_addr: str, user_agent: str, nbytes: int) -> None:
        self.viewers.delivered(playback_id, client_addr, user_agent, nbytes, time.monotonic())

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            now = time.monotonic()
            for stream in self.registry.live():
                meter = self._meters.get(stream.stream_id)
                lifecycle = self._lifecycles.get(stream.stream_id)
                # Health follows the start event: a publish whose codecs are not known
                # yet has not started as far as analytics are concerned.
                if meter is None or lifecycle is None or not lifecycle.started:
                    continue
                sample = meter.sample(now)
                self._emit(
                    EngineEvent(
                        EngineEventKind.INGEST_HEALTH,
                        stream.stream_id,
                        time.time(),
                        {
                            "session_id": stream.session_id,
                            "bitrate_bps": sample.bitrate_bps,
                            "fps": sample.fps,
                            "keyframe_interval_s": sample.keyframe_interval_s,
                            "dropped_frames": 0,
                            "interval_ms": int(sample.interval_s * 1000),
                        },
                    )
                )

    async def _viewer_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._report_viewers(self.viewers.sweep(time.monotonic()))
            self._report_webrtc_progress(time.monotonic())

    def _report_webrtc_progress(self, now: float) -> None:
        if self.webrtc is None:
            return
        for start, sent in self.webrtc.viewer_bytes():
            reported = self._webrtc_reported.get(start.session_id)
            if reported is None or now - reported[0] < self.settings.viewer_progress_s:
                continue
            self._webrtc_reported[start.session_id] = (now, sent)
            self._emit(
                EngineEvent(
                    EngineEventKind.VIEWER_PROGRESS,
                    start.stream_id,
                    time.time(),
                    {
                        "session_id": start.session_id,
                        "protocol": "whep",
                        "bytes_sent": sent - reported[1],
                        "watched_ms": int((now - reported[0]) * 1000),
                        "playback_id": start.playback_id,
                    },
                )
            )

    def _stream_id_of(self, playback_id: str) -> str:
        return self._stream_ids.get(playback_id, "")

    def _report_viewers(self, changes: ViewerChanges) -> None:
        now = time.time()
        for session in changes.started:
            self._emit(
                EngineEvent(
                    EngineEventKind.VIEWER_STARTED,
                    self._stream_id_of(session.playback_id),
                    now,
                    {
                        "session_id": session.session_id,
                        "protocol": session.protocol,
                        "client_addr": session.client_addr,
                        "user_agent": session.user_agent,
                        "playback_id": session.playback_id,
                    },
                )
            )
        for session, nbytes, watched in changes.progressed:
            self._emit(
                EngineEvent(
                    EngineEventKind.VIEWER_PROGRESS,
                    self._stream_id_of(session.playback_id),
                    now,
                    {
                        "session_id": session.session_id,
                        "protocol": session.protocol,
                        "bytes_sent": nbytes,
                        "watched_ms": watched,
                        "playback_id": session.playback_id,
                    },
                )
            )
        for session, nbytes, watched in changes.ended:
            self._emit(
                EngineEvent(
                    EngineEventKind.VIEWER_ENDED,
                    self._stream_id_of(session.playback_id),
                    now,
                    {
                        "session_id": session.session_id,
                        "protocol": session.protocol,
                        "bytes_sent": nbytes,
                        "watched_ms": watched,
                        "duration_ms": int((session.last_seen - session.started_at) * 1000),
                        "playback_id": session.playback_id,
                    },
                )
            )
