"""Cuts one publish into HLS segments: where to cut, on which timeline, how long each is.

Video streams are cut at the first keyframe at or after the target duration (a keyframe
that misses the target by less than `CUT_TOLERANCE` still counts, so millisecond-rounded
FLV timestamps do not push every cut one GOP later); audio-only streams are cut by time.
A keyframe before the target also cuts when waiting for the next one would make the
segment longer than the playlist's target duration allows (RFC 8216 6.2.1 forbids raising
it): an encoder that inserts a keyframe shortly before the regular one and restarts its
GOP there would otherwise give a segment of two GOPs. The next keyframe is expected one
keyframe interval later, the longest of the last `KEYFRAME_INTERVALS` seen.
A stream whose keyframes stop coming is cut anyway after `max_duration`, so memory and
latency stay bounded.

Timestamps are mapped onto a `PublishTimeline` that outlives the publish: a reconnecting
publisher continues where the previous one stopped, so timestamps never jump backwards
for a player even across `#EXT-X-DISCONTINUITY`.

Runs on a worker thread; nothing here touches the event loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from media_plane.media import TIMEBASE_HZ, AudioTrack, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.hls.playlist import nearest_integer
from media_plane.protocols.mpegts.muxer import TsSegmentMuxer

__all__ = [
    "CUT_TOLERANCE",
    "MuxedSegment",
    "PublishTimeline",
    "SegmentMuxer",
    "Segmenter",
]

#: A keyframe this close before the target still closes the segment (seconds).
CUT_TOLERANCE = 0.02
#: Where the first publish of a playback id starts on the timeline (ticks). Leaves room
#: for audio that arrives slightly before the first keyframe.
TIMELINE_ORIGIN = 10 * TIMEBASE_HZ
#: How many recent keyframe intervals predict the next one.
KEYFRAME_INTERVALS = 3
#: A timestamp jump larger than this (either way) is taken as the publisher resetting its
#: clock, and the timeline is re-anchored instead of clamped (ticks).
_TIMESTAMP_JUMP = 10 * TIMEBASE_HZ


@dataclass(frozen=True, slots=True)
class MuxedSegment:
    data: bytes
    #: Decode timestamp of its first frame on the playback timeline, 90 kHz ticks.
    start_dts: int
    #: Seconds.
    duration: float
    #: Wall-clock time of its first frame, seconds since the epoch.
    program_date_time: float
    #: First segment of a publish (the store marks a discontinuity if others preceded it).
    first_of_publish: bool = False
    #: Encoding parameters changed within the publish.
    discontinuity: bool = False


@dataclass(slots=True)
class PublishTimeline:
    """What one publish hands to the next one on the same playback id."""

    next_dts: int = TIMELINE_ORIGIN
    continuity: dict[int, int] = field(default_factory=dict)


class SegmentMuxer(Protocol):
    """What the segmenter needs from a muxer (`TsSegmentMuxer` in production)."""

    continuity: dict[int, int]

    @property
    def has_video(self) -> bool: ...

    @property
    def is_open(self) -> bool: ...

    def open_segment(self) -> None: ...

    def write(self, kind: TrackKind, pts: int, dts: int, data: bytes, keyframe: bool) -> None: ...

    def close_segment(self) -> bytes: ...

    def abort_segment(self) -> None: ...


class Segmenter:
    """Packets of one publish in, closed segments out."""

    def __init__(
        self,
        video: VideoTrack | None,
        audio: AudioTrack | None,
        *,
        target_duration: float = 2.0,
        max_duration: float | None = None,
        timeline: PublishTimeline | None = None,
        first_of_publish: bool = True,
        discontinuity: bool = False,
        wall_clock: Callable[[], float] = time.time,
        muxer: SegmentMuxer | None = None,
    ) -> None:
        if target_duration <= 0:
            raise ValueError("target duration must be positive")
        self._muxer: SegmentMuxer = muxer if muxer is not None else TsSegmentMuxer(video, audio)
        self._timeline = timeline if timeline is not None else PublishTimeline()
        self._muxer.continuity = self._timeline.continuity
        self._target = round((target_duration - CUT_TOLERANCE) * TIMEBASE_HZ)
        #: The TARGETDURATION the setting alone gives (RFC 8216 rounding).
        self._target_whole = nearest_integer(target_duration)
        self._keyframe_intervals: deque[int] = deque(maxlen=KEYFRAME_INTERVALS)
        self._last_keyframe_dts: int | None = None
        limit = max_duration if max_duration is not None else max(10.0, 5 * target_duration)
        self._max = round(limit * TIMEBASE_HZ)
        self._wall_clock = wall_clock
        self._has_video = self._muxer.has_video
        self._offset: int | None = None
        self._anchor_wall = 0.0
        self._anchor_dts = 0
        self._last_dts: dict[TrackKind, int] = {}
        self._frame_ticks: dict[TrackKind, int] = {}
        self._segment_start = 0
        self._first_of_publish = first_of_publish
        self._discontinuity = discontinuity

    @property
    def timeline(self) -> PublishTimeline:
        return self._timeline

    def push(self, packet: MediaPacket) -> MuxedSegment | None:
        """Add a packet; returns the segment it closed, if it closed one.

        Raises `MuxError` when the muxer rejects the packet; call `abort()` then.
        """
        is_video = packet.kind is TrackKind.VIDEO
        if is_video and not self._has_video:
            return None
        if not self._muxer.is_open and self._has_video and not (is_video and packet.keyframe):
            return None  # a segment of a video stream starts with a keyframe
        if self._offset is None:
            self._offset = self._timeline.next_dts - packet.dts
            self._anchor_dts = self._timeline.next_dts
            self._anchor_wall = self._wall_clock()
        dts, pts = self._map(packet)
        if is_video and packet.keyframe:
            self._keyframe_at(dts)

        closed: MuxedSegment | None = None
        if not self._muxer.is_open:
            self._open(dts)
        else:
            elapsed = dts - self._segment_start
            if self._has_video:
                cut = (
                    is_video
                    and packet.keyframe
                    and (elapsed >= self._target or self._next_keyframe_too_late(elapsed))
                )
            else:
                cut = elapsed >= self._target
            if cut or elapsed >= self._max:
                closed = self._close(dts)
                self._open(dts)
        self._muxer.write(packet.kind, pts, dts, packet.data, packet.keyframe)
        return closed

    def _next_keyframe_too_late(self, elapsed: int) -> bool:
        """At a keyframe before the target: whether the next one, expected a keyframe
        interval later, would close a segment past the target duration's rounding."""
        if not self._keyframe_intervals:
            return False
        interval = max(self._keyframe_intervals)
        target = max(self._target_whole, nearest_integer(interval / TIMEBASE_HZ))
        # Shorter than target + 0.5 s rounds to within the target (RFC 8216 4.3.3.1).
        return elapsed + interval >= (2 * target + 1) * TIMEBASE_HZ // 2

    def _keyframe_at(self, dts: int) -> None:
        if self._last_keyframe_dts is not None and dts > self._last_keyframe_dts:
            self._keyframe_intervals.append(dts - self._last_keyframe_dts)
        self._last_keyframe_dts = dts

    def finish(self) -> MuxedSegment | None:
        """Close the last, usually shorter, segment at the end of the publish."""
        if not self._muxer.is_open:
            return None
        end = self._segment_start
        for kind, last in self._last_dts.items():
            end = max(end, last + self._frame_ticks.get(kind, 0))
        return self._close(end)

    def abort(self) -> None:
        """Drop the open segment after a muxing error; the next keyframe starts afresh."""
        self._muxer.abort_segment()
        # The dropped span leaves a gap in the timeline.
        self._discontinuity = True

    def _map(self, packet: MediaPacket) -> tuple[int, int]:
        assert self._offset is not None
        kind = packet.kind
        dts = packet.dts + self._offset
        last = self._last_dts.get(kind)
        if last is not None:
            step = dts - last
            if step > _TIMESTAMP_JUMP or step < -_TIMESTAMP_JUMP:
                # The publisher's clock jumped: continue right after what was already sent.
                resume = max(v + self._frame_ticks.get(k, 0) for k, v in self._last_dts.items())
                self._offset += resume - dts
                dts = resume
            elif step <= 0:
                dts = last + 1  # the muxer needs strictly increasing DTS per track
            else:
                self._frame_ticks[kind] = step
        pts = max(packet.pts + self._offset, dts)
        self._last_dts[kind] = dts
        return dts, pts

    def _open(self, dts: int) -> None:
        self._muxer.open_segment()
        self._segment_start = dts

    def _close(self, end_dts: int) -> MuxedSegment:
        data = self._muxer.close_segment()
        start = self._segment_start
        end_dts = max(end_dts, start)
        self._timeline.next_dts = end_dts
        segment = MuxedSegment(
            data=data,
            start_dts=start,
            duration=(end_dts - start) / TIMEBASE_HZ,
            program_date_time=self._anchor_wall + (start - self._anchor_dts) / TIMEBASE_HZ,
            first_of_publish=self._first_of_publish,
            discontinuity=self._discontinuity,
        )
        self._first_of_publish = False
        self._discontinuity = False
        return segment
