"""The media engine: protocol servers, pipelines and reporting wired around one registry.

A composition root: it builds the parts, connects their callbacks and owns the two
periodic tasks; what is counted and reported lives in `media_plane.reporting`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from media_plane.media.hooks import EngineHooks
from media_plane.media.live_stream import StreamRegistry
from media_plane.media.stats import EngineStats, StreamStats
from media_plane.pipelines.remux import HlsOutput
from media_plane.pipelines.transcode import HlsTranscoders
from media_plane.reporting import EngineReporter
from media_plane.servers.hls import HlsHttpServer
from media_plane.servers.http import ConnectionLimits
from media_plane.servers.rtmp import RtmpLimits, RtmpServer
from media_plane.servers.webrtc import (
    SIGNALING_LIMITS,
    WebRtcHttpServer,
    WebRtcOptions,
    WebRtcSessions,
)

logger = logging.getLogger(__name__)


class EngineSettings(BaseModel):
    """What the engine is told by its host. Each setting and its default is declared here
    once; the edge sidecar's settings inherit these fields (read from EDGE_* variables)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Address every listener binds to.
    bind_host: str = "127.0.0.1"
    rtmp_port: int = Field(default=1935, ge=0, le=65535)
    http_port: int = Field(default=8088, ge=0, le=65535)
    #: How often ingest health samples are emitted per live stream.
    health_interval_s: float = Field(default=10.0, gt=0)
    #: An HLS viewer that sent no request for this long has left (its session ends).
    viewer_idle_s: float = Field(default=20.0, gt=0)
    #: How often a watching viewer's progress (bytes, time) is reported.
    viewer_progress_s: float = Field(default=30.0, gt=0)
    #: WHIP ingest and WHEP playback (signaling on `webrtc_port`, media over UDP). Off
    #: unless the host turns it on, so an engine embedded for RTMP and HLS only binds no
    #: extra port.
    webrtc_enabled: bool = False
    webrtc_port: int = Field(default=8089, ge=0, le=65535)
    #: Addresses offered as ICE host candidates. Empty: every interface address except
    #: loopback (aioice's choice). Loopback must be listed to be used (tests, one host).
    ice_host_addresses: tuple[str, ...] = ()
    #: STUN/TURN URLs used by the edge and advertised to clients in `Link` headers.
    ice_servers: tuple[str, ...] = ()
    #: A WebRTC peer that has not completed ICE and DTLS by then is dropped.
    webrtc_connect_timeout_s: float = Field(default=15.0, gt=0, le=120)
    #: What one RTMP client may cost (EDGE_RTMP__MAX_CONNECTIONS=..., and so on).
    rtmp: RtmpLimits = Field(default_factory=RtmpLimits)
    #: Connection caps and request-head deadlines of the HLS server and of WHIP/WHEP
    #: signaling (EDGE_HLS_LIMITS__MAX_CONNECTIONS_PER_ADDRESS=64, ...; see
    #: docs/architecture.md, threat model and limits).
    hls_limits: ConnectionLimits = Field(default_factory=ConnectionLimits)
    webrtc_limits: ConnectionLimits = SIGNALING_LIMITS

    @field_validator("ice_host_addresses")
    @classmethod
    def _addresses_are_ips(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            ipaddress.ip_address(address)  # ValueError names the bad one
        return value

    @field_validator("ice_servers")
    @classmethod
    def _ice_server_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"not a STUN/TURN URL: {url!r}")
        return value


class MediaEngine:
    def __init__(self, settings: EngineSettings, hooks: EngineHooks) -> None:
        self.settings = settings
        self.hooks = hooks
        self.registry = StreamRegistry()
        self.reporter = EngineReporter(
            hooks.emit,
            viewer_idle_s=settings.viewer_idle_s,
            viewer_progress_s=settings.viewer_progress_s,
        )
        self.registry.on_start(self.reporter.stream_started)
        #: WHIP streams reach HLS through one transcode per stream where the codec needs it.
        self._hls_transcoders = HlsTranscoders() if settings.webrtc_enabled else None
        self.hls = HlsOutput(
            self.registry,
            adapt=self._hls_transcoders.adapt if self._hls_transcoders is not None else None,
        )
        self.rtmp = RtmpServer(
            self.registry, hooks, settings.bind_host, settings.rtmp_port, limits=settings.rtmp
        )
        self.http = HlsHttpServer(
            self.hls.store,
            hooks,
            settings.bind_host,
            settings.http_port,
            limits=settings.hls_limits,
            on_delivery=self.reporter.delivered,
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
                viewers=self.reporter.viewers,
            )
            self.webrtc_http = WebRtcHttpServer(
                self.webrtc,
                settings.bind_host,
                settings.webrtc_port,
                limits=settings.webrtc_limits,
            )
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
        """Starts every part; if one cannot (a port in use), stops what started and raises
        an OSError whose `filename` is the "host:port" that could not be listened on."""
        settings = self.settings
        try:
            await self.hls.start()
            await _listening(self.http.start, settings.bind_host, settings.http_port)
            if self.webrtc is not None and self.webrtc_http is not None:
                await self.webrtc.start()
                await _listening(self.webrtc_http.start, settings.bind_host, settings.webrtc_port)
            await _listening(self.rtmp.start, settings.bind_host, settings.rtmp_port)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [
            asyncio.create_task(
                self._every(self.settings.health_interval_s, self.reporter.report_health),
                name="engine-ingest-health",
            ),
            asyncio.create_task(
                self._every(1.0, self.reporter.sweep_viewers), name="engine-viewer-sessions"
            ),
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
        self.reporter.sweep_viewers(end_all=True)
        await self.http.stop()
        await self.hls.stop()
        if self._hls_transcoders is not None:
            await self._hls_transcoders.stop()

    def stats(self) -> EngineStats:
        streams = []
        for stream in self.registry.live():
            report = self.reporter.stream(stream)
            streams.append(
                StreamStats(
                    stream_id=stream.stream_id,
                    playback_id=stream.playback_id,
                    protocol=stream.protocol,
                    viewers=report.viewers,
                    bytes_in=report.bytes_in,
                    ingest_bitrate_bps=report.ingest_bitrate_bps,
                    live=report.live,
                )
            )
        webrtc = self.webrtc.stats() if self.webrtc is not None else None
        return EngineStats(
            streams=streams,
            viewers=self.reporter.viewers.count(),
            bytes_in=self.reporter.bytes_in(),
            bytes_out=self.http.stats.bytes_out + (webrtc.bytes_out if webrtc else 0),
            webrtc_publishers=webrtc.publishers if webrtc else 0,
            webrtc_viewers=webrtc.viewers if webrtc else 0,
            webrtc_sessions_ended=webrtc.ended if webrtc else {},
        )

    @staticmethod
    async def _every(interval_s: float, report: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            report()


async def _listening(start: Callable[[], Awaitable[None]], host: str, port: int) -> None:
    try:
        await start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, reason, f"{host}:{port}") from exc
