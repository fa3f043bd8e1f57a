"""WebRTC codecs into HLS codecs, once per stream: VP8 to H.264 and Opus to AAC.

`HlsTranscoders.adapt` is the HLS output's `ReaderAdapter`: for a stream whose tracks HLS
can carry (H.264, AAC) it returns the packager itself; otherwise a `TranscodingReader`
that runs one thread per stream and hands the packager H.264 and AAC. H.264 from a WHIP
publisher passes through untouched; only what HLS cannot carry is transcoded.

Keyframes: a browser sends VP8 keyframes rarely (on loss, or every few minutes), and the
segmenter cuts only on keyframes, so the H.264 encoder is made to start a new GOP (an
IDR) every `segment_duration` of media time. Segments then keep the configured target
duration instead of following the publisher's keyframes.

Everything of a stream goes through its one thread, passthrough packets too, so the
packager sees audio and video in the order they arrived. The queue is bounded: when the
thread falls behind, packets are dropped (counted) and video resumes at a keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import av

from media_plane.codecs.h264 import avc_decoder_configuration, parse_annexb, sps_dimensions
from media_plane.media import TIMEBASE_HZ, AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.media.live_stream import LiveStream, StreamReader
from media_plane.media.protocol import MediaProtocol

__all__ = ["HlsTranscoders", "TranscodingReader"]

logger = logging.getLogger(__name__)

_QUEUE_LIMIT = 512
_VIDEO_TIME_BASE = fractions.Fraction(1, TIMEBASE_HZ)
_AAC_RATE = 48_000
_AAC_FRAME = 1024


@dataclass(slots=True)
class _Tracks:
    video: VideoTrack | None
    audio: AudioTrack | None


_Item = _Tracks | MediaPacket | None


class _VideoEncoder:
    """Decoded frames to H.264 with an IDR every `gop_ticks` of media time."""

    def __init__(self, gop_ticks: int) -> None:
        self._gop_ticks = gop_ticks
        self._decoder = av.CodecContext.create("libvpx", "r")
        self._encoder: av.VideoCodecContext | None = None
        self._size = (0, 0)
        self._last_idr: int | None = None
        self.track: VideoTrack | None = None

    def push(self, packet: MediaPacket) -> list[MediaPacket]:
        source = av.Packet(packet.data)
        source.pts = packet.pts
        source.time_base = _VIDEO_TIME_BASE
        out: list[MediaPacket] = []
        for frame in self._decoder.decode(source):
            out.extend(self._encode(frame, packet.pts))
        return out

    def _encode(self, frame: av.VideoFrame, pts: int) -> list[MediaPacket]:
        if (frame.width, frame.height) != self._size or self._encoder is None:
            self._size = (frame.width, frame.height)
            encoder = av.CodecContext.create("libx264", "w")
            encoder.width, encoder.height = frame.width, frame.height
            encoder.pix_fmt = "yuv420p"
            encoder.time_base = _VIDEO_TIME_BASE
            encoder.options = {
                "preset": "veryfast",
                "tune": "zerolatency",
                "forced-idr": "1",
                # Keyframes come only when forced (below): no scene-cut or interval IDRs.
                "x264-params": "scenecut=0:keyint=100000:min-keyint=100000",
            }
            self._encoder = encoder
            self._last_idr = None
        force = self._last_idr is None or pts - self._last_idr >= self._gop_ticks
        if force:
            self._last_idr = pts
        frame = frame.reformat(format="yuv420p") if frame.format.name != "yuv420p" else frame
        frame.pts = pts
        frame.time_base = _VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if force else av.video.frame.PictureType.NONE
        out: list[MediaPacket] = []
        for encoded in self._encoder.encode(frame):
            unit = parse_annexb(bytes(encoded))
            if unit.sps is not None and unit.pps is not None:
                extradata = avc_decoder_configuration(unit.sps, unit.pps)
                if self.track is None or self.track.extradata != extradata:
                    width, height = sps_dimensions(unit.sps)
                    self.track = VideoTrack(Codec.H264, extradata, width, height)
            if not unit.avcc:
                continue
            ticks = encoded.pts if encoded.pts is not None else pts
            dts = encoded.dts if encoded.dts is not None else ticks
            out.append(MediaPacket(TrackKind.VIDEO, dts, ticks, unit.avcc, unit.keyframe))
        return out


class _AudioEncoder:
    """Opus to AAC-LC, 48 kHz stereo."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("libopus", "r")
        self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=_AAC_RATE)
        encoder = av.CodecContext.create("aac", "w")
        encoder.sample_rate = _AAC_RATE
        encoder.layout = "stereo"
        encoder.format = "fltp"
        encoder.bit_rate = 128_000
        encoder.time_base = fractions.Fraction(1, _AAC_RATE)
        encoder.open()
        self._encoder = encoder
        self._fifo = av.AudioFifo()
        self._origin: int | None = None
        self._samples = 0
        self.track = AudioTrack(Codec.AAC, bytes(encoder.extradata or b""), _AAC_RATE, 2)

    def push(self, packet: MediaPacket) -> list[MediaPacket]:
        if self._origin is None:
            self._origin = packet.pts
        for frame in self._decoder.decode(av.Packet(packet.data)):
            for resampled in self._resampler.resample(frame):
                resampled.pts = None
                self._fifo.write(resampled)
        out: list[MediaPacket] = []
        while self._fifo.samples >= _AAC_FRAME:
            chunk = self._fifo.read(_AAC_FRAME)
            if chunk is None:
                break
            chunk.pts = self._samples
            chunk.time_base = self._encoder.time_base
            self._samples += _AAC_FRAME
            for encoded in self._encoder.encode(chunk):
                samples = encoded.pts if encoded.pts is not None else self._samples
                ticks = self._origin + samples * TIMEBASE_HZ // _AAC_RATE
                out.append(MediaPacket(TrackKind.AUDIO, ticks, ticks, bytes(encoded), True))
        return out


class TranscodingReader:
    """The `StreamReader` in front of one stream's HLS packager (event-loop side)."""

    def __init__(
        self,
        stream_id: str,
        inner: StreamReader,
        segment_duration: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.stream_id = stream_id
        self._inner = inner
        self._gop_ticks = max(1, int(segment_duration * TIMEBASE_HZ))
        self._loop = loop
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hls-transcode", daemon=True)
        self._thread.start()
        self._ended = False
        self._skip_video = False
        self.dropped = 0
        # Worker-side state.
        self._video: _VideoEncoder | None = None
        self._audio: _AudioEncoder | None = None
        self._source = _Tracks(None, None)
        self._announced: tuple[VideoTrack | None, AudioTrack | None] | None = None

    # -- StreamReader (event loop) ------------------------------------------------------

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self._queue.put(_Tracks(video, audio))

    def on_packet(self, packet: MediaPacket) -> None:
        is_video = packet.kind is TrackKind.VIDEO
        if self._skip_video and is_video and not packet.keyframe:
            self.dropped += 1
            return
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self.dropped += 1
            self._skip_video = self._skip_video or is_video
            return
        if is_video:
            self._skip_video = False
        self._queue.put(packet)

    def on_end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put(None)
            self._inner.on_end()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # -- worker thread ------------------------------------------------------------------

    def _post(self, callback: Callable[[], None]) -> None:
        # RuntimeError: the loop is closed, the engine is gone.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, callback)

    def _deliver(self, callback: Callable[[], None]) -> None:
        if not self._ended:
            callback()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, _Tracks):
                    self._tracks(item)
                else:
                    self._packet(item)
            except av.FFmpegError as exc:
                logger.warning("stream %s: HLS transcode dropped a frame: %s", self.stream_id, exc)
            except Exception:
                logger.exception("stream %s: HLS transcode failed", self.stream_id)

    def _tracks(self, tracks: _Tracks) -> None:
        self._source = tracks
        video, audio = tracks.video, tracks.audio
        self._video = _VideoEncoder(self._gop_ticks) if video and video.codec is Codec.VP8 else None
        self._audio = _AudioEncoder() if audio and audio.codec is Codec.OPUS else None
        self._announced = None
        self._announce()

    def _output_tracks(self) -> tuple[VideoTrack | None, AudioTrack | None, bool]:
        """(video, audio, complete): complete once every output track is known."""
        video, audio = self._source.video, self._source.audio
        out_video = video if video is None or video.codec is Codec.H264 else None
        if self._video is not None:
            out_video = self._video.track
        out_audio = audio if audio is None or audio.codec is Codec.AAC else None
        if self._audio is not None:
            out_audio = self._audio.track
        complete = (video is None or out_video is not None) and (
            audio is None or out_audio is not None
        )
        return out_video, out_audio, complete

    def _announce(self) -> bool:
        video, audio, complete = self._output_tracks()
        if not complete:
            return False
        if self._announced != (video, audio):
            self._announced = (video, audio)
            inner = self._inner
            self._post(lambda: inner.on_tracks(video, audio))
        return True

    def _packet(self, packet: MediaPacket) -> None:
        if not packet.data:
            return  # an empty packet would put the decoder into draining mode for good
        if packet.kind is TrackKind.VIDEO:
            packets = [packet] if self._video is None else self._video.push(packet)
        else:
            packets = [packet] if self._audio is None else self._audio.push(packet)
        if not packets or not self._announce():
            return
        for out in packets:
            self._post(partial(self._inner.on_packet, out))


class HlsTranscoders:
    """Creates a stream's `TranscodingReader` when its codecs need one, and joins them."""

    def __init__(self) -> None:
        self._readers: list[TranscodingReader] = []

    def adapt(self, stream: LiveStream, packager: StreamReader) -> StreamReader:
        # WHIP streams announce their codecs after the offer is answered but before the
        # first frame; the answer already fixed them, so decide on the protocol instead.
        if stream.protocol is not MediaProtocol.WHIP:
            return packager
        reader = TranscodingReader(
            stream.stream_id,
            packager,
            stream.grant.segment_duration,
            asyncio.get_running_loop(),
        )
        self._readers = [r for r in self._readers if r._thread.is_alive()]
        self._readers.append(reader)
        return reader

    async def stop(self) -> None:
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.on_end()
        for reader in readers:
            await asyncio.to_thread(reader.join, 5.0)
