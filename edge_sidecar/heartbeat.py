"""Periodic heartbeats: what the node carries and how loaded it is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb

from edge_sidecar.control_client import ControlClient
from edge_sidecar.errors import EdgeSidecarError
from edge_sidecar.metrics import EdgeMetrics
from media_plane.edge_engine import EngineStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodePlace:
    region: str
    lat: float
    lon: float


class BandwidthMeter:
    """Bits per second from monotonically growing byte counters."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: tuple[float, int, int] | None = None

    def sample(self, bytes_in: int, bytes_out: int) -> tuple[int, int]:
        now = self._clock()
        last, self._last = self._last, (now, bytes_in, bytes_out)
        if last is None or now <= last[0]:
            return 0, 0
        elapsed = now - last[0]
        return (
            int(max(0, bytes_in - last[1]) * 8 / elapsed),
            int(max(0, bytes_out - last[2]) * 8 / elapsed),
        )


def live_streams(stats: EngineStats) -> int:
    """Streams with media flowing; a publish still connecting holds its key but is not
    live (see `StreamStats.live`)."""
    return sum(1 for s in stats.streams if s.live)


def build_heartbeat(
    place: NodePlace,
    stats: EngineStats,
    *,
    cpu_percent: float,
    memory_used: int,
    memory_total: int,
    bandwidth_in_bps: int,
    bandwidth_out_bps: int,
) -> pb.HeartbeatRequest:
    return pb.HeartbeatRequest(
        region=place.region,
        location=common_pb2.GeoPoint(lat=place.lat, lon=place.lon),
        cpu_percent=cpu_percent,
        memory_used_bytes=memory_used,
        memory_total_bytes=memory_total,
        bandwidth_in_bps=bandwidth_in_bps,
        bandwidth_out_bps=bandwidth_out_bps,
        streams=[
            pb.StreamPresence(
                stream_id=s.stream_id,
                is_origin=True,
                viewers=s.viewers,
                ingest_bitrate_bps=s.ingest_bitrate_bps,
                # Listed all the same: the control plane keeps the key held by this node.
                awaiting_media=not s.live,
            )
            for s in stats.streams
        ],
        viewers=stats.viewers,
        streams_carried=live_streams(stats),
    )


class Heartbeater:
    def __init__(
        self,
        control: ControlClient,
        place: NodePlace,
        stats: Callable[[], EngineStats],
        metrics: EdgeMetrics,
        interval_s: float,
        on_state: Callable[[int], None] | None = None,
    ) -> None:
        self._control = control
        self._place = place
        self._stats = stats
        self._metrics = metrics
        self._interval = interval_s
        self._on_state = on_state
        self._bandwidth = BandwidthMeter()
        self._task: asyncio.Task[None] | None = None
        self.last_success: float | None = None
        psutil.cpu_percent(None)  # primes the counter so the first sample is meaningful

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="edge-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def beat(self) -> None:
        stats = self._stats()
        memory = psutil.virtual_memory()
        bw_in, bw_out = self._bandwidth.sample(stats.bytes_in, stats.bytes_out)
        self._metrics.streams.set(live_streams(stats))
        self._metrics.viewers.set(stats.viewers)
        self._metrics.bytes_in.set(stats.bytes_in)
        self._metrics.bytes_out.set(stats.bytes_out)
        self._metrics.webrtc_sessions.labels("publish").set(stats.webrtc_publishers)
        self._metrics.webrtc_sessions.labels("play").set(stats.webrtc_viewers)
        for reason, count in stats.webrtc_sessions_ended.items():
            self._metrics.webrtc_sessions_ended.labels(reason).set(count)
        request = build_heartbeat(
            self._place,
            stats,
            cpu_percent=psutil.cpu_percent(None),
            memory_used=memory.total - memory.available,
            memory_total=memory.total,
            bandwidth_in_bps=bw_in,
            bandwidth_out_bps=bw_out,
        )
        response = await self._control.heartbeat(request)
        self.last_success = time.monotonic()
        if response.heartbeat_interval_seconds:
            self._interval = float(response.heartbeat_interval_seconds)
        if self._on_state is not None:
            self._on_state(response.state)

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except EdgeSidecarError as exc:
                self._metrics.heartbeat_failures.inc()
                logger.warning("heartbeat failed: %s", exc)
            except Exception:
                self._metrics.heartbeat_failures.inc()
                logger.exception("heartbeat failed")
            await asyncio.sleep(self._interval)
