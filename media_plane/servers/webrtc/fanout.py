"""One live stream delivered to its WebRTC viewers without encoding anything per viewer.

`StreamFanout` is the `StreamReader` of one stream. It packetizes each frame once for all
viewers (H.264 STAP-A/FU-A from Annex B with parameter sets on keyframes, VP8 payload
descriptors, Opus as is) into an `RtpFrame` and offers that same object to every viewer's
`RtpOutput`; the stream's `SendScheduler` writes them (per viewer: a 12-byte header, SRTP
and a `sendto` per packet, see `rtp_output`). AAC audio (RTMP publishers) goes through one
`OpusTranscoder` per stream, started with the first viewer.

A viewer that joins gets the current GOP at once, from its keyframe, with timestamps
squeezed to end at the newest frame: its decoder has a picture within one round trip
instead of up to a GOP later, and playback does not start a GOP behind live. A viewer that
falls behind (its queue is full) skips to the next keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from media_plane.codecs.errors import CodecError
from media_plane.codecs.h264 import AnnexBConverter, split_annexb
from media_plane.media import TIMEBASE_HZ, AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.pipelines.transcode.opus_transcoder import OPUS_CLOCK, OpusTranscoder
from media_plane.servers.webrtc._aiortc_seams import h264_payloads, vp8_payloads
from media_plane.servers.webrtc.rtp_output import (
    PassthroughTrack,
    RtpFrame,
    RtpOutput,
    SendScheduler,
)

__all__ = ["FanoutStats", "StreamFanout", "Viewer"]

logger = logging.getLogger(__name__)

#: Frames queued per viewer output before it is considered behind (about 4 s at 30 fps).
_QUEUE_LIMIT = 120
#: The GOP cache gives up on GOPs longer than this (a publisher without keyframes).
_GOP_LIMIT_FRAMES = 600
_GOP_LIMIT_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class Viewer:
    video: RtpOutput | None
    audio: RtpOutput | None

    @property
    def bytes_sent(self) -> int:
        return sum(o.bytes for o in (self.video, self.audio) if o is not None)


@dataclass(frozen=True, slots=True)
class FanoutStats:
    viewers: int
    video_encoders: int
    audio_transcoders: int


class StreamFanout:
    def __init__(
        self,
        stream_id: str,
        loop: asyncio.AbstractEventLoop,
        *,
        on_keyframe_wanted: Callable[[], None] | None = None,
        on_transcoder_stopped: Callable[[OpusTranscoder], None] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self._loop = loop
        self._on_keyframe_wanted = on_keyframe_wanted
        self._on_transcoder_stopped = on_transcoder_stopped
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = None
        self._annexb: AnnexBConverter | None = None
        #: The current GOP: each frame with its 90 kHz timestamp.
        self._gop: list[tuple[RtpFrame, int]] = []
        self._gop_bytes = 0
        self._viewers: list[Viewer] = []
        self._transcoder: OpusTranscoder | None = None
        self._scheduler = SendScheduler(loop)
        #: One placeholder track per kind for every viewer's aiortc sender (a track is a
        #: few KB of event emitter; it carries nothing, `rtp_output.PassthroughTrack`).
        self._video_track = PassthroughTrack("video")
        self._audio_track = PassthroughTrack("audio")
        # RFC 7741 4.2: a 15-bit picture id, counting frames from a random start.
        self._picture_id = random.getrandbits(15)
        self.ended = False
        self.transcoders_started = 0
        #: Video frames received, and packetized (once each, whatever the viewers).
        self.frames_in = 0
        self.frames_packetized = 0

    # -- StreamReader ---------------------------------------------------------------------

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.video, self.audio = video, audio
        self._annexb = None
        if video is not None and video.codec is Codec.H264:
            try:
                self._annexb = AnnexBConverter(video.extradata)
            except CodecError as exc:
                logger.warning("stream %s: H.264 not playable: %s", self.stream_id, exc)
        self._gop.clear()
        self._gop_bytes = 0
        if self._transcoder is not None and (audio is None or audio.codec is not Codec.AAC):
            self._stop_transcoder()
        if self._viewers and audio is not None and audio.codec is Codec.AAC:
            self._start_transcoder(audio)

    def on_packet(self, packet: MediaPacket) -> None:
        if packet.kind is TrackKind.VIDEO:
            self._video_packet(packet)
        elif self.audio is not None:
            if self.audio.codec is Codec.OPUS:
                if self._viewers:
                    self._deliver_audio(packet.data, packet.pts * OPUS_CLOCK // TIMEBASE_HZ)
            elif self._transcoder is not None:
                self._transcoder.push(packet)

    def on_end(self) -> None:
        self.ended = True
        self._scheduler.close()
        for viewer in self._viewers:
            for output in (viewer.video, viewer.audio):
                if output is not None:
                    output.close()
        self._viewers.clear()
        self._video_track.stop()
        self._audio_track.stop()
        self._gop.clear()
        self._stop_transcoder()

    # -- viewers --------------------------------------------------------------------------

    def add_viewer(self, *, video: bool, audio: bool) -> Viewer:
        # The video queue has room for the cached GOP on top of the usual margin, so a
        # long GOP does not overflow it before the sender has started.
        viewer = Viewer(
            RtpOutput("video", self._scheduler, _QUEUE_LIMIT + len(self._gop), self._video_track)
            if video and self.video is not None
            else None,
            RtpOutput("audio", self._scheduler, _QUEUE_LIMIT, self._audio_track)
            if audio and self.audio is not None
            else None,
        )
        if viewer.video is not None:
            if self._gop:
                # Squeezed to one tick apart, ending at the newest frame's timestamp.
                newest = self._gop[-1][1]
                count = len(self._gop)
                for index, (frame, _) in enumerate(self._gop):
                    viewer.video.offer(frame, newest - (count - 1 - index))
            elif self._on_keyframe_wanted is not None:
                self._on_keyframe_wanted()
        if (
            viewer.audio is not None
            and self.audio is not None
            and self.audio.codec is Codec.AAC
            and self._transcoder is None
        ):
            self._start_transcoder(self.audio)
        self._viewers.append(viewer)
        return viewer

    def remove_viewer(self, viewer: Viewer) -> None:
        if viewer in self._viewers:
            self._viewers.remove(viewer)
        for output in (viewer.video, viewer.audio):
            if output is not None:
                output.close()
        if not self._viewers:
            self._stop_transcoder()

    def stats(self) -> FanoutStats:
        # Video never has an encoder here; the count is reported so tests and metrics can
        # hold the design to it.
        return FanoutStats(len(self._viewers), 0, 1 if self._transcoder is not None else 0)

    # -- internals ------------------------------------------------------------------------

    def _video_packet(self, packet: MediaPacket) -> None:
        self.frames_in += 1
        video = self.video
        if video is None or not (self._viewers or self._gop or packet.keyframe):
            return
        try:
            if video.codec is Codec.H264:
                if self._annexb is None:
                    return
                data = self._annexb.convert(packet.data, packet.keyframe)
                payloads = h264_payloads(split_annexb(data))
            elif video.codec is Codec.VP8:
                payloads = vp8_payloads(packet.data, self._picture_id)
                self._picture_id = (self._picture_id + 1) & 0x7FFF
            else:
                return
        except CodecError as exc:
            logger.warning("stream %s: dropping a video frame: %s", self.stream_id, exc)
            return
        if not payloads:
            return
        frame = RtpFrame.of(payloads, packet.keyframe)
        self.frames_packetized += 1
        if packet.keyframe:
            self._gop.clear()
            self._gop_bytes = 0
        if self._gop or packet.keyframe:
            if len(self._gop) < _GOP_LIMIT_FRAMES and self._gop_bytes < _GOP_LIMIT_BYTES:
                self._gop.append((frame, packet.pts))
                self._gop_bytes += frame.size
            else:
                self._gop.clear()
                self._gop_bytes = 0
        for viewer in self._viewers:
            if viewer.video is not None:
                viewer.video.offer(frame, packet.pts)

    def _deliver_audio(self, data: bytes, pts: int) -> None:
        frame = RtpFrame.of((data,), True)
        for viewer in self._viewers:
            if viewer.audio is not None:
                viewer.audio.offer(frame, pts)

    def _opus_ready(self, data: bytes, pts: int) -> None:
        if not self.ended and self._viewers:
            self._deliver_audio(data, pts)

    def _start_transcoder(self, audio: AudioTrack) -> None:
        self._stop_transcoder()
        self._transcoder = OpusTranscoder(audio, self._opus_ready, self._loop)
        self._transcoder.start()
        self.transcoders_started += 1

    def _stop_transcoder(self) -> None:
        transcoder, self._transcoder = self._transcoder, None
        if transcoder is not None:
            transcoder.stop()
            if self._on_transcoder_stopped is not None:
                self._on_transcoder_stopped(transcoder)
