"""AAC to Opus for one stream, on its own thread: the one audio transcode every WebRTC
viewer of an RTMP-published stream shares.

Packets cross in through a bounded queue (dropped, counted, when the thread falls behind)
and Opus packets cross back with `loop.call_soon_threadsafe`. Output time follows the
samples encoded, anchored at the first input packet's time, so a gap in the input shows
as a jump in the output rather than drift.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from collections.abc import Callable

import av

from media_plane.media import TIMEBASE_HZ, AudioTrack, MediaPacket

__all__ = ["OPUS_CLOCK", "OpusTranscoder"]

logger = logging.getLogger(__name__)

OPUS_CLOCK = 48_000
_FRAME_SAMPLES = 960  # 20 ms, what WebRTC receivers expect
_QUEUE_LIMIT = 256

#: Called on the event loop with (opus packet, pts in 1/48000 s).
OpusCallback = Callable[[bytes, int], None]


class OpusTranscoder:
    def __init__(
        self,
        track: AudioTrack,
        on_packet: OpusCallback,
        loop: asyncio.AbstractEventLoop,
        *,
        bitrate: int = 96_000,
    ) -> None:
        self._track = track
        self._on_packet = on_packet
        self._loop = loop
        self._bitrate = bitrate
        self._queue: queue.SimpleQueue[MediaPacket | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="opus-transcoder", daemon=True)
        self.dropped = 0
        self.errors = 0
        self._stopped = False

    def start(self) -> None:
        self._thread.start()

    def push(self, packet: MediaPacket) -> None:
        if self._stopped:
            return
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self.dropped += 1
            return
        self._queue.put(packet)

    def stop(self) -> None:
        """Ask the thread to finish; it exits after what is queued (never blocks the loop)."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            decoder = av.CodecContext.create("aac", "r")
            decoder.extradata = self._track.extradata
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_CLOCK)
            encoder = av.CodecContext.create("libopus", "w")
            encoder.sample_rate = OPUS_CLOCK
            encoder.layout = "stereo"
            encoder.format = "s16"
            encoder.bit_rate = self._bitrate
            encoder.time_base = fractions.Fraction(1, OPUS_CLOCK)
            encoder.options = {"application": "lowdelay", "frame_duration": "20"}
            fifo = av.AudioFifo()
        except Exception:
            logger.exception("could not set up the AAC to Opus transcoder")
            return
        origin: int | None = None
        samples_out = 0
        while True:
            packet = self._queue.get()
            if packet is None:
                return
            try:
                if origin is None:
                    origin = packet.pts * OPUS_CLOCK // TIMEBASE_HZ
                for frame in decoder.decode(av.Packet(packet.data)):
                    for resampled in resampler.resample(frame):
                        resampled.pts = None
                        fifo.write(resampled)
                while fifo.samples >= _FRAME_SAMPLES:
                    chunk = fifo.read(_FRAME_SAMPLES)
                    if chunk is None:
                        break
                    chunk.pts = samples_out
                    chunk.time_base = encoder.time_base
                    samples_out += _FRAME_SAMPLES
                    for encoded in encoder.encode(chunk):
                        pts = origin + (encoded.pts if encoded.pts is not None else samples_out)
                        self._loop.call_soon_threadsafe(self._on_packet, bytes(encoded), pts)
            except av.FFmpegError as exc:
                # A corrupt frame costs that frame; the decoder state stays.
                self.errors += 1
                logger.warning("AAC to Opus: dropping a frame: %s", exc)
            except RuntimeError:
                # The loop closed under us: the engine is gone.
                return
