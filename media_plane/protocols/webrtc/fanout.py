"""One live stream delivered to its WebRTC viewers without encoding anything per viewer.

`StreamFanout` is the `StreamReader` of one stream. It turns each engine packet into one
`av.Packet` in the form aiortc's senders packetize (Annex B H.264 with parameter sets on
keyframes, VP8 as is, Opus) and hands that same object to every viewer's `EncodedTrack`:
aiortc's `RTCRtpSender` packs packets it is given instead of encoding frames, so per-viewer
work is RTP packetization and SRTP only. AAC audio (RTMP publishers) goes through one
`OpusTranscoder` per stream, started with the first viewer.

A viewer that joins gets the current GOP at once, from its keyframe, with timestamps
squeezed to end at the newest frame: its decoder has a picture within one round trip
instead of up to a GOP later, and playback does not start a GOP behind live. A viewer that
falls behind (its queue is full) skips to the next keyframe.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.stream import Stream

from media_plane.media import TIMEBASE_HZ, AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.webrtc._aiortc_seams import h264_payloads
from media_plane.protocols.webrtc.h264 import AvccToAnnexB, H264FormatError, split_annexb
from media_plane.protocols.webrtc.opus_transcoder import OPUS_CLOCK, OpusTranscoder

__all__ = ["EncodedTrack", "FanoutStats", "StreamFanout", "Viewer"]

logger = logging.getLogger(__name__)

#: The packets handed to aiortc senders (not tied to any demuxer stream).
_Packet: TypeAlias = "av.Packet[Stream]"
_VIDEO_TIME_BASE = fractions.Fraction(1, TIMEBASE_HZ)
_AUDIO_TIME_BASE = fractions.Fraction(1, OPUS_CLOCK)
#: Frames queued per viewer track before it is considered behind (about 4 s at 30 fps).
_TRACK_QUEUE_LIMIT = 120
#: Packets whose RTP payloads are remembered (3 s of 30 fps video, about 1 MB at
#: 2.5 Mbit/s per stream): a viewer further behind than that packetizes for itself.
_PAYLOAD_CACHE_PACKETS = 90
#: The GOP cache gives up on GOPs longer than this (a publisher without keyframes).
_GOP_LIMIT_FRAMES = 600
_GOP_LIMIT_BYTES = 16 * 1024 * 1024


class EncodedTrack(MediaStreamTrack):
    """A track whose `recv()` yields already-encoded packets for one viewer's sender."""

    def __init__(self, kind: str, limit: int = _TRACK_QUEUE_LIMIT) -> None:
        super().__init__()
        self.kind = kind
        self._limit = limit
        self._queue: asyncio.Queue[_Packet | None] = asyncio.Queue()
        self._skipping = False
        self.packets = 0
        self.bytes = 0
        self.skipped = 0

    async def recv(self) -> _Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        self.packets += 1
        self.bytes += packet.size
        return packet

    def offer(self, packet: _Packet, keyframe: bool) -> None:
        if self.readyState != "live":
            return
        if self._skipping and not keyframe:
            self.skipped += 1
            return
        if self._queue.qsize() >= self._limit:
            # The sender is not keeping up: drop what is queued and resume at a keyframe,
            # so the viewer's decoder never gets a frame whose reference it lacks.
            self.skipped += self._queue.qsize() + 1
            self._queue = asyncio.Queue()
            self._skipping = self.kind == "video"
            if self._skipping:
                return
        self._skipping = False
        self._queue.put_nowait(packet)

    def finish(self) -> None:
        """No more packets: the sender's loop ends after what is queued."""
        self._queue.put_nowait(None)


@dataclass(slots=True)
class Viewer:
    video: EncodedTrack | None
    audio: EncodedTrack | None

    @property
    def bytes_sent(self) -> int:
        return sum(t.bytes for t in (self.video, self.audio) if t is not None)


@dataclass(frozen=True, slots=True)
class FanoutStats:
    viewers: int
    video_encoders: int
    audio_transcoders: int


class SharedPayloads:
    """Each video packet's RTP payloads, computed by the first sender that packs it.

    Keyed by packet identity: every viewer is given the same `av.Packet` object, so the
    first sender to reach a frame packetizes it and the others reuse the result. The entry
    holds the packet itself, so an id is never reused while its entry lives.
    """

    def __init__(self, limit: int = _PAYLOAD_CACHE_PACKETS) -> None:
        self._limit = limit
        self._entries: dict[int, tuple[_Packet, list[bytes]]] = {}
        self.computed = 0
        self.reused = 0

    def __call__(self, packet: _Packet) -> list[bytes]:
        entry = self._entries.get(id(packet))
        if entry is not None and entry[0] is packet:
            self.reused += 1
            return entry[1]
        payloads = h264_payloads(split_annexb(bytes(packet)))
        self.computed += 1
        if len(self._entries) >= self._limit:
            # Dicts keep insertion order: the oldest entry goes first.
            del self._entries[next(iter(self._entries))]
        self._entries[id(packet)] = (packet, payloads)
        return payloads


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
        self._annexb: AvccToAnnexB | None = None
        self._gop: list[_Packet] = []
        self._gop_bytes = 0
        self._viewers: list[Viewer] = []
        self._transcoder: OpusTranscoder | None = None
        self.payloads = SharedPayloads()
        self.ended = False
        self.transcoders_started = 0

    # -- StreamReader ---------------------------------------------------------------------

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.video, self.audio = video, audio
        self._annexb = None
        if video is not None and video.codec is Codec.H264:
            try:
                self._annexb = AvccToAnnexB(video.extradata)
            except H264FormatError as exc:
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
        for viewer in self._viewers:
            for track in (viewer.video, viewer.audio):
                if track is not None:
                    track.finish()
        self._viewers.clear()
        self._gop.clear()
        self._stop_transcoder()

    # -- viewers --------------------------------------------------------------------------

    def add_viewer(self, *, video: bool, audio: bool) -> Viewer:
        # The video queue has room for the cached GOP on top of the usual margin, so a
        # long GOP does not overflow it before the sender has started.
        viewer = Viewer(
            EncodedTrack("video", _TRACK_QUEUE_LIMIT + len(self._gop))
            if video and self.video is not None
            else None,
            EncodedTrack("audio") if audio and self.audio is not None else None,
        )
        if viewer.video is not None:
            if self._gop:
                newest = self._gop[-1].pts or 0
                count = len(self._gop)
                for index, cached in enumerate(self._gop):
                    viewer.video.offer(_retimed(cached, newest - (count - 1 - index)), index == 0)
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
        for track in (viewer.video, viewer.audio):
            if track is not None:
                track.finish()
        if not self._viewers:
            self._stop_transcoder()

    def stats(self) -> FanoutStats:
        # Video never has an encoder here; the count is reported so tests and metrics can
        # hold the design to it.
        return FanoutStats(len(self._viewers), 0, 1 if self._transcoder is not None else 0)

    # -- internals ------------------------------------------------------------------------

    def _video_packet(self, packet: MediaPacket) -> None:
        video = self.video
        if video is None:
            return
        if video.codec is Codec.H264:
            if self._annexb is None:
                return
            try:
                data = self._annexb.convert(packet.data, packet.keyframe)
            except H264FormatError as exc:
                logger.warning("stream %s: dropping a video frame: %s", self.stream_id, exc)
                return
        elif video.codec is Codec.VP8:
            data = packet.data
        else:
            return
        out = av.Packet(data)
        out.pts = out.dts = packet.pts
        out.time_base = _VIDEO_TIME_BASE
        if packet.keyframe:
            self._gop.clear()
            self._gop_bytes = 0
        if self._gop or packet.keyframe:
            if len(self._gop) < _GOP_LIMIT_FRAMES and self._gop_bytes < _GOP_LIMIT_BYTES:
                self._gop.append(out)
                self._gop_bytes += len(data)
            else:
                self._gop.clear()
                self._gop_bytes = 0
        for viewer in self._viewers:
            if viewer.video is not None:
                viewer.video.offer(out, packet.keyframe)

    def _deliver_audio(self, data: bytes, pts: int) -> None:
        out = av.Packet(data)
        out.pts = out.dts = pts
        out.time_base = _AUDIO_TIME_BASE
        for viewer in self._viewers:
            if viewer.audio is not None:
                viewer.audio.offer(out, True)

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


def _retimed(packet: _Packet, pts: int) -> _Packet:
    copy = av.Packet(bytes(packet))
    copy.pts = copy.dts = pts
    copy.time_base = packet.time_base
    return copy
