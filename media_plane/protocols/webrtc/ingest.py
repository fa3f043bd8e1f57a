"""A WHIP publisher's encoded frames turned into the engine's tracks and packets.

Pure apart from the clock: `WhipFeed` is fed (codec, frame, RTP time) by the receiver taps
and writes to a `StreamSink` (the LiveStream). Rules:

* Video tracks are announced once the first keyframe brings its parameter sets (H.264) or
  its picture size (VP8); frames before it cannot be decoded by anyone and are dropped, and
  `wants_keyframe` tells the session to ask the publisher for one.
* Audio before the video is announced is dropped too, so that every reader sees both
  tracks before any packet. A publish with no video track announces audio at once.
* aiortc maps each track's RTP time to start at 0, independently per track; both are
  placed on the engine's 90 kHz clock from the arrival time of each track's first frame,
  which keeps audio and video within a few milliseconds of each other on a LAN (RTCP
  sender reports would do better; not needed for HLS or WHEP).
* A changed H.264 SPS/PPS (a browser adapting its resolution) announces new tracks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from media_plane.codecs.h264 import avc_decoder_configuration, parse_annexb, sps_dimensions
from media_plane.codecs.vp8 import vp8_dimensions, vp8_is_keyframe
from media_plane.media import TIMEBASE_HZ, AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack

__all__ = ["StreamSink", "WhipFeed"]

_OPUS_CLOCK = 48_000


class StreamSink(Protocol):
    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None: ...

    def push(self, packet: MediaPacket) -> None: ...


class WhipFeed:
    def __init__(
        self,
        sink: StreamSink,
        *,
        has_video: bool,
        has_audio: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._has_video = has_video
        self._has_audio = has_audio
        self._clock = clock
        self._started = clock()
        #: Per kind: engine ticks at which that track's RTP time 0 falls.
        self._origin: dict[TrackKind, int] = {}
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = (
            AudioTrack(Codec.OPUS, b"", _OPUS_CLOCK, 2) if (has_audio) else None
        )
        self._announced = False
        #: When the last frame arrived (clock time), None before the first.
        self.last_frame_at: float | None = None
        self.frames_in = 0
        self.dropped = 0
        self.keyframes = 0

    @property
    def wants_keyframe(self) -> bool:
        return self._has_video and self.video is None

    def frame(self, codec: str, data: bytes, rtp_time: int) -> None:
        if not data:
            return  # RTP padding; an empty packet would flush a decoder downstream
        self.frames_in += 1
        self.last_frame_at = self._clock()
        name = codec.lower()
        if name == "h264":
            self._h264(data, rtp_time)
        elif name == "vp8":
            self._vp8(data, rtp_time)
        elif name == "opus":
            self._opus(data, rtp_time)
        else:
            self.dropped += 1

    def _ticks(self, kind: TrackKind, rtp_time: int, clock_rate: int) -> int:
        origin = self._origin.get(kind)
        if origin is None:
            elapsed = self._clock() - self._started
            origin = int(elapsed * TIMEBASE_HZ) - rtp_time * TIMEBASE_HZ // clock_rate
            self._origin[kind] = origin
        return origin + rtp_time * TIMEBASE_HZ // clock_rate

    def _announce(self) -> None:
        self._announced = True
        self._sink.set_tracks(self.video, self.audio)

    def _h264(self, data: bytes, rtp_time: int) -> None:
        unit = parse_annexb(data)
        if unit.sps is not None and unit.pps is not None:
            extradata = avc_decoder_configuration(unit.sps, unit.pps)
            if self.video is None or self.video.extradata != extradata:
                width, height = sps_dimensions(unit.sps)
                self.video = VideoTrack(Codec.H264, extradata, width, height)
                self._announce()
        if self.video is None or not unit.avcc:
            self.dropped += 1
            return
        self.keyframes += unit.keyframe
        ticks = self._ticks(TrackKind.VIDEO, rtp_time, TIMEBASE_HZ)
        self._sink.push(MediaPacket(TrackKind.VIDEO, ticks, ticks, unit.avcc, unit.keyframe))

    def _vp8(self, data: bytes, rtp_time: int) -> None:
        keyframe = vp8_is_keyframe(data)
        if keyframe:
            width, height = vp8_dimensions(data)
            video = self.video
            if video is None or (video.width, video.height) != (width, height):
                self.video = VideoTrack(Codec.VP8, b"", width, height)
                self._announce()
        if self.video is None:
            self.dropped += 1
            return
        self.keyframes += keyframe
        ticks = self._ticks(TrackKind.VIDEO, rtp_time, TIMEBASE_HZ)
        self._sink.push(MediaPacket(TrackKind.VIDEO, ticks, ticks, data, keyframe))

    def _opus(self, data: bytes, rtp_time: int) -> None:
        if not self._announced:
            if self._has_video:
                self.dropped += 1
                return
            self._announce()
        ticks = self._ticks(TrackKind.AUDIO, rtp_time, _OPUS_CLOCK)
        self._sink.push(MediaPacket(TrackKind.AUDIO, ticks, ticks, data, True))
