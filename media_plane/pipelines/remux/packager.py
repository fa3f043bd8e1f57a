"""Runs segmenters on worker threads, fed by stream readers on the event loop.

A `StreamPackager` is the `StreamReader` attached to one live stream. Its methods run on
the event loop and only enqueue; a small pool of threads does the muxing. Every playback id
is pinned to one thread, so a publish and the next one on the same id are processed in
order and can share a timeline. Results cross back with `loop.call_soon_threadsafe`.

Queues are bounded in packets: when a thread falls behind, new packets are dropped (logged
once per episode, counted) instead of growing memory, and video is then skipped up to the
next keyframe so what does get muxed still decodes. Track and end notices are never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import cast

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.pipelines.remux.segmenter import MuxedSegment, PublishTimeline, Segmenter
from media_plane.protocols.mpegts.muxer import MuxError, UnsupportedTrackError

__all__ = ["PackagerPool", "PackagerStats", "StreamPackager"]

logger = logging.getLogger(__name__)

#: Called on the event loop with (playback_id, segment).
SegmentCallback = Callable[[str, MuxedSegment], None]
#: Called on the event loop with the playback id whose publish ended.
EndCallback = Callable[[str], None]
#: Runs a callback on the event loop; called from worker threads.
_Post = Callable[[Callable[[], None]], None]


class _Op(IntEnum):
    TRACKS = 1
    PACKET = 2
    END = 3
    STOP = 4


_Item = tuple[_Op, "StreamPackager | None", object]
_Tracks = tuple[VideoTrack | None, AudioTrack | None]


@dataclass(slots=True)
class PackagerStats:
    packets_in: int = 0
    packets_dropped: int = 0
    segments_out: int = 0
    mux_errors: int = 0
    queued: int = 0


class StreamPackager:
    """The `StreamReader` for one publish. Methods are called on the event loop."""

    def __init__(
        self,
        worker: _Worker,
        playback_id: str,
        stream_id: str,
        target_duration: float,
        on_ended: Callable[[StreamPackager], None] | None = None,
    ) -> None:
        self._worker = worker
        self._on_ended = on_ended
        self.playback_id = playback_id
        self.stream_id = stream_id
        self.target_duration = target_duration
        self.packets_in = 0
        self.packets_dropped = 0
        self._overloaded = False
        self._skip_video_until_keyframe = False

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self._worker.put((_Op.TRACKS, self, (video, audio)))

    def on_packet(self, packet: MediaPacket) -> None:
        self.packets_in += 1
        is_video = packet.kind is TrackKind.VIDEO
        if self._skip_video_until_keyframe and is_video and not packet.keyframe:
            self.packets_dropped += 1
            return
        if not self._worker.offer(packet, self):
            self.packets_dropped += 1
            if is_video:
                self._skip_video_until_keyframe = True
            if not self._overloaded:
                self._overloaded = True
                logger.warning("stream %s: packager queue full, dropping packets", self.stream_id)
            return
        if is_video:
            self._skip_video_until_keyframe = False
        if self._overloaded:
            self._overloaded = False
            logger.info(
                "stream %s: packager caught up, %d packets dropped so far",
                self.stream_id,
                self.packets_dropped,
            )

    def on_end(self) -> None:
        self._worker.put((_Op.END, self, None))
        on_ended, self._on_ended = self._on_ended, None
        if on_ended is not None:
            on_ended(self)


@dataclass(slots=True)
class _Publish:
    """Worker-side state of one StreamPackager."""

    segmenter: Segmenter | None = None
    tracks: _Tracks = (None, None)
    first: bool = True


class _Worker:
    """One thread, its bounded queue and the publishes pinned to it."""

    def __init__(
        self,
        index: int,
        queue_limit: int,
        post: _Post,
        on_segment: SegmentCallback,
        on_end: EndCallback,
        timeline_ttl: float,
        wall_clock: Callable[[], float],
        clock: Callable[[], float],
    ) -> None:
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._limit = queue_limit
        self._post = post
        self._on_segment = on_segment
        self._on_end = on_end
        self._timeline_ttl = timeline_ttl
        self._wall_clock = wall_clock
        self._clock = clock
        self._publishes: dict[StreamPackager, _Publish] = {}
        #: Timelines of ended publishes by playback id, with the time they ended.
        self._timelines: dict[str, tuple[PublishTimeline, float]] = {}
        self.segments_out = 0
        self.mux_errors = 0
        self.thread = threading.Thread(target=self._run, name=f"hls-packager-{index}", daemon=True)

    def qsize(self) -> int:
        return self._queue.qsize()

    def put(self, item: _Item) -> None:
        self._queue.put(item)

    def offer(self, packet: MediaPacket, packager: StreamPackager) -> bool:
        if self._queue.qsize() >= self._limit:
            return False
        self._queue.put((_Op.PACKET, packager, packet))
        return True

    def _run(self) -> None:
        get = self._queue.get
        while True:
            op, packager, payload = get()
            if op is _Op.STOP:
                return
            assert packager is not None
            try:
                if op is _Op.PACKET:
                    self._packet(packager, cast(MediaPacket, payload))
                elif op is _Op.TRACKS:
                    self._tracks(packager, cast(_Tracks, payload))
                else:
                    self._end(packager)
            except Exception:
                # A bug must cost one stream its current segment, never the thread.
                logger.exception("stream %s: packager failed", packager.stream_id)
                self.mux_errors += 1
                self._reset(packager)

    def _tracks(self, packager: StreamPackager, tracks: _Tracks) -> None:
        publish = self._publishes.setdefault(packager, _Publish())
        if tracks == publish.tracks and publish.segmenter is not None:
            return
        changed = publish.segmenter is not None
        timeline = self._close(packager, publish)
        publish.tracks = tracks
        video, audio = tracks
        if video is not None and video.codec is not Codec.H264:
            logger.warning("stream %s: %s video is not packaged", packager.stream_id, video.codec)
            video = None
        if audio is not None and audio.codec is not Codec.AAC:
            logger.warning("stream %s: %s audio is not packaged", packager.stream_id, audio.codec)
            audio = None
        if video is None and audio is None:
            if timeline is not None:
                self._keep_timeline(packager.playback_id, timeline)
            return
        if timeline is None:
            timeline = self._take_timeline(packager.playback_id)
        try:
            publish.segmenter = Segmenter(
                video,
                audio,
                target_duration=packager.target_duration,
                timeline=timeline,
                first_of_publish=publish.first,
                discontinuity=changed,
                wall_clock=self._wall_clock,
            )
        except UnsupportedTrackError as exc:
            logger.warning("stream %s: not packaged for HLS: %s", packager.stream_id, exc)
            publish.segmenter = None

    def _packet(self, packager: StreamPackager, packet: MediaPacket) -> None:
        publish = self._publishes.get(packager)
        if publish is None or publish.segmenter is None:
            return
        try:
            segment = publish.segmenter.push(packet)
        except MuxError as exc:
            self.mux_errors += 1
            logger.warning("stream %s: dropping the current segment: %s", packager.stream_id, exc)
            publish.segmenter.abort()
            return
        if segment is not None:
            self._emit(packager, publish, segment)

    def _end(self, packager: StreamPackager) -> None:
        publish = self._publishes.pop(packager, None)
        if publish is None:
            return
        timeline = self._close(packager, publish)
        if timeline is not None:
            self._keep_timeline(packager.playback_id, timeline)
        self._post(partial(self._on_end, packager.playback_id))

    def _keep_timeline(self, playback_id: str, timeline: PublishTimeline) -> None:
        now = self._clock()
        self._timelines[playback_id] = (timeline, now)
        expired = [k for k, (_, t) in self._timelines.items() if now - t > self._timeline_ttl]
        for key in expired:
            del self._timelines[key]

    def _close(self, packager: StreamPackager, publish: _Publish) -> PublishTimeline | None:
        segmenter = publish.segmenter
        if segmenter is None:
            return None
        publish.segmenter = None
        try:
            segment = segmenter.finish()
        except MuxError as exc:
            self.mux_errors += 1
            logger.warning("stream %s: dropping the last segment: %s", packager.stream_id, exc)
            segmenter.abort()
            segment = None
        if segment is not None:
            self._emit(packager, publish, segment)
        return segmenter.timeline

    def _emit(self, packager: StreamPackager, publish: _Publish, segment: MuxedSegment) -> None:
        publish.first = False
        self.segments_out += 1
        self._post(partial(self._on_segment, packager.playback_id, segment))

    def _take_timeline(self, playback_id: str) -> PublishTimeline:
        entry = self._timelines.pop(playback_id, None)
        return entry[0] if entry is not None else PublishTimeline()

    def _reset(self, packager: StreamPackager) -> None:
        publish = self._publishes.get(packager)
        if publish is not None and publish.segmenter is not None:
            publish.segmenter.abort()


class PackagerPool:
    """Worker threads that turn live streams into segments."""

    def __init__(
        self,
        on_segment: SegmentCallback,
        on_end: EndCallback,
        *,
        workers: int = 1,
        queue_limit: int = 4096,
        timeline_ttl: float = 600.0,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1 or queue_limit < 1:
            raise ValueError("need at least one worker and a positive queue limit")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers = [
            _Worker(
                index,
                queue_limit,
                self._post,
                on_segment,
                on_end,
                timeline_ttl,
                wall_clock,
                clock,
            )
            for index in range(workers)
        ]
        self._packagers: set[StreamPackager] = set()
        self._dropped_by_ended = 0
        self._packets_in_by_ended = 0
        self._started = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._started:
            raise RuntimeError("packager pool already started")
        self._started = True
        self._loop = loop
        for worker in self._workers:
            worker.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every thread to finish its queue and exit; blocks up to `timeout` each."""
        if not self._started:
            return
        for worker in self._workers:
            worker.put((_Op.STOP, None, None))
        for worker in self._workers:
            worker.thread.join(timeout)
            if worker.thread.is_alive():
                logger.error("%s did not stop within %.1fs", worker.thread.name, timeout)
        self._started = False

    def packager(
        self,
        playback_id: str,
        stream_id: str,
        target_duration: float,
        *,
        on_ended: Callable[[StreamPackager], None] | None = None,
    ) -> StreamPackager:
        """A reader for a new publish, pinned to the thread that owns its playback id.

        `on_ended` runs (on the loop) once the stream ends.
        """
        index = zlib.crc32(playback_id.encode()) % len(self._workers)
        packager = StreamPackager(
            self._workers[index], playback_id, stream_id, target_duration, on_ended
        )
        self._packagers.add(packager)
        return packager

    def release(self, packager: StreamPackager) -> None:
        """Forget a packager whose stream ended (its counters move into the totals)."""
        if packager in self._packagers:
            self._packagers.discard(packager)
            self._dropped_by_ended += packager.packets_dropped
            self._packets_in_by_ended += packager.packets_in

    def stats(self) -> PackagerStats:
        return PackagerStats(
            packets_in=self._packets_in_by_ended + sum(p.packets_in for p in self._packagers),
            packets_dropped=self._dropped_by_ended
            + sum(p.packets_dropped for p in self._packagers),
            segments_out=sum(w.segments_out for w in self._workers),
            mux_errors=sum(w.mux_errors for w in self._workers),
            queued=sum(w.qsize() for w in self._workers),
        )

    def _post(self, callback: Callable[[], None]) -> None:
        # Runs on a worker thread.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:
            logger.debug("event loop closed; result dropped")
