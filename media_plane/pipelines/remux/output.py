"""HLS output of the engine: every live stream packaged into the segment store.

`HlsOutput` attaches a `StreamPackager` to each stream the registry starts, runs the
packager threads, moves finished segments into the `SegmentStore` on the event loop and
runs the store's housekeeping. The HTTP server reads the same store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_plane.media.live_stream import LiveStream, StreamReader, StreamRegistry
from media_plane.pipelines.remux.packager import PackagerPool, PackagerStats, StreamPackager
from media_plane.pipelines.remux.segment_store import SegmentStore
from media_plane.pipelines.remux.segmenter import MuxedSegment

__all__ = ["HlsOutput", "HlsOutputStats", "ReaderAdapter"]

#: Wraps a stream's packager before it is attached, e.g. to transcode codecs HLS cannot
#: carry (VP8, Opus) into ones it can. The returned reader must forward `on_end`.
ReaderAdapter = Callable[[LiveStream, StreamReader], StreamReader]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HlsOutputStats:
    live_streams: int
    packager: PackagerStats


class HlsOutput:
    def __init__(
        self,
        registry: StreamRegistry,
        store: SegmentStore | None = None,
        *,
        workers: int = 1,
        queue_limit: int = 4096,
        housekeeping_interval: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
        adapt: ReaderAdapter | None = None,
    ) -> None:
        self._registry = registry
        self._adapt = adapt
        self._store = store if store is not None else SegmentStore()
        self._pool = PackagerPool(
            self._segment_ready,
            self._publish_ended,
            workers=workers,
            queue_limit=queue_limit,
            wall_clock=wall_clock,
        )
        self._housekeeping_interval = housekeeping_interval
        #: packager -> (the reader attached for it: itself or its adapter, detach)
        self._attached: dict[StreamPackager, tuple[StreamReader, Callable[[], None]]] = {}
        self._housekeeping: asyncio.Task[None] | None = None
        self._running = False
        # The registry has no way to unregister; a stopped output ignores new streams.
        registry.on_start(self._stream_started)

    @property
    def store(self) -> SegmentStore:
        return self._store

    def stats(self) -> HlsOutputStats:
        return HlsOutputStats(live_streams=len(self._attached), packager=self._pool.stats())

    async def start(self) -> None:
        if self._running:
            raise RuntimeError("HLS output already started")
        self._pool.start(asyncio.get_running_loop())
        self._running = True
        self._housekeeping = asyncio.create_task(
            self._run_housekeeping(), name="hls-output-housekeeping"
        )
        for stream in self._registry.live():
            self._stream_started(stream)

    async def stop(self) -> None:
        """Detach from every stream and stop the threads (queued work is finished first)."""
        if not self._running:
            return
        self._running = False
        for packager, (reader, detach) in list(self._attached.items()):
            detach()
            reader.on_end()
            self._pool.release(packager)
        self._attached.clear()
        task, self._housekeeping = self._housekeeping, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self._pool.stop)

    def _stream_started(self, stream: LiveStream) -> None:
        if not self._running:
            return
        packager = self._pool.packager(
            stream.playback_id,
            stream.stream_id,
            stream.grant.segment_duration,
            on_ended=self._stream_ended,
        )
        reader: StreamReader = packager
        if self._adapt is not None:
            reader = self._adapt(stream, packager)
        self._attached[packager] = (reader, stream.attach(reader))
        logger.info("stream %s: packaging HLS as %s", stream.stream_id, stream.playback_id)

    def _stream_ended(self, packager: StreamPackager) -> None:
        if self._attached.pop(packager, None) is not None:
            self._pool.release(packager)

    def _segment_ready(self, playback_id: str, segment: MuxedSegment) -> None:
        self._store.add_segment(
            playback_id,
            segment.data,
            duration=segment.duration,
            program_date_time=segment.program_date_time,
            new_publish=segment.first_of_publish,
            discontinuity=segment.discontinuity,
        )

    def _publish_ended(self, playback_id: str) -> None:
        self._store.end(playback_id)

    async def _run_housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self._housekeeping_interval)
            try:
                self._store.evict_expired()
            except Exception:
                logger.exception("segment store housekeeping failed")
