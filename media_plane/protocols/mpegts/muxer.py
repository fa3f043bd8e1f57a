"""Remuxes canonical H.264/AAC packets into MPEG-TS segments with PyAV (no re-encoding).

Why MPEG-TS and not fragmented MP4: every HLS player (including old Safari, smart TVs and
set-top boxes) plays TS, and a TS segment needs no init segment, so a segment is simply
bytes cut at a keyframe. LL-HLS would change this: its partial segments are most often
CMAF fMP4 (an `#EXT-X-MAP` init segment plus `moof`/`mdat` fragments per part), which
means a second muxer beside this one rather than a change to it.

Each segment is written by a fresh mpegts muxer, so it starts with PAT/PMT and decodes on
its own; continuity counters are then carried over from the previous segment so that a
client reading the segments back to back sees one unbroken transport stream.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import av.error

from media_plane.codecs.aac import AdtsFramer
from media_plane.codecs.errors import CodecError
from media_plane.codecs.h264 import AnnexBConverter
from media_plane.media.errors import MediaPlaneError
from media_plane.media.units import TIMEBASE_HZ, AudioTrack, Codec, TrackKind, VideoTrack

__all__ = ["MuxError", "TsSegmentMuxer", "UnsupportedTrackError", "carry_continuity"]

logger = logging.getLogger(__name__)

_TS_PACKET = 188
_TS_SYNC = 0x47
_NULL_PID = 0x1FFF
_TIME_BASE = Fraction(1, TIMEBASE_HZ)
#: How far the PCR runs ahead of the decode timestamps (microseconds). The T-STD buffer
#: model (ISO/IEC 13818-1 2.4.2) has a decoder take each access unit out of its buffer at
#: its DTS, so the bytes must arrive, by the PCR clock, before then; with no lead, video DTS
#: equal the PCR and audio lags it, which strict hardware players reject. FFmpeg's own
#: default (`-muxdelay 0.7`).
PCR_LEAD_US = 700_000


class MuxError(MediaPlaneError, RuntimeError):
    """The muxer rejected a packet or failed to write a segment."""


class UnsupportedTrackError(MediaPlaneError, ValueError):
    """A track this packager cannot carry in MPEG-TS (codec or configuration)."""


class _ChunkSink:
    """The file object PyAV writes to: chunks appended to one growing buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)


def carry_continuity(segment: bytearray, counters: dict[int, int]) -> None:
    """Renumber a segment's continuity counters so they follow the previous segment's.

    `counters` maps PID to the counter its next payload packet must carry; it is read for
    the shift and updated with this segment's last values. A fresh muxer counts each PID
    from zero and increments only on packets with payload, so one shift per PID suffices;
    adaptation-only packets repeat the previous counter (ISO/IEC 13818-1, 2.4.3.3).
    """
    if len(segment) % _TS_PACKET:
        raise MuxError("segment is not a whole number of transport packets")
    shifts: dict[int, int] = {}
    last: dict[int, int] = {}
    for position in range(0, len(segment), _TS_PACKET):
        if segment[position] != _TS_SYNC:
            raise MuxError("lost transport stream sync")
        pid = ((segment[position + 1] & 0x1F) << 8) | segment[position + 2]
        flags = segment[position + 3]
        shift = shifts.get(pid)
        if shift is None:
            expected = counters.get(pid)
            if expected is None or pid == _NULL_PID:
                shift = 0
            else:
                has_payload = 1 if flags & 0x10 else 0
                shift = (expected - (1 - has_payload) - (flags & 0x0F)) & 0x0F
            shifts[pid] = shift
        if shift:
            flags = (flags & 0xF0) | ((flags + shift) & 0x0F)
            segment[position + 3] = flags
        last[pid] = flags
    for pid, flags in last.items():
        counters[pid] = ((flags & 0x0F) + 1) & 0x0F


class TsSegmentMuxer:
    """Muxes one publish's packets, segment after segment, into MPEG-TS bytes.

    Not thread-safe; one instance belongs to one worker thread. Timestamps are in 90 kHz
    ticks and must increase per track (the segmenter guarantees it).
    """

    def __init__(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        if video is None and audio is None:
            raise UnsupportedTrackError("no track to mux")
        if video is not None and video.codec is not Codec.H264:
            raise UnsupportedTrackError(f"video codec {video.codec} is not packaged for HLS")
        if audio is not None and audio.codec is not Codec.AAC:
            raise UnsupportedTrackError(f"audio codec {audio.codec} is not packaged for HLS")
        try:
            self._annexb = (
                AnnexBConverter(video.extradata, access_unit_delimiter=True)
                if video is not None
                else None
            )
            self._adts = AdtsFramer(audio.extradata) if audio is not None else None
        except CodecError as exc:
            raise UnsupportedTrackError(str(exc)) from exc
        self._video = video
        self._audio = audio
        self.continuity: dict[int, int] = {}
        self._sink: _ChunkSink | None = None
        self._container: av.container.OutputContainer | None = None
        self._video_stream: av.stream.Stream | None = None
        self._audio_stream: av.stream.Stream | None = None

    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def is_open(self) -> bool:
        return self._container is not None

    def open_segment(self) -> None:
        if self._container is not None:
            raise MuxError("a segment is already open")
        sink = _ChunkSink()
        try:
            # The sink has no seek, so FFmpeg would take it for a live output and flush
            # after every packet: one Python `write` call per packet. Segments are only
            # read once closed, so let it fill its 32 KB buffer first (same bytes, ~6x
            # fewer calls).
            container = av.open(
                sink,
                mode="w",
                format="mpegts",
                options={"flush_packets": "0", "max_delay": str(PCR_LEAD_US)},
            )
            if self._video is not None:
                video_stream = container.add_mux_stream(
                    "h264", width=self._video.width, height=self._video.height
                )
                video_stream.time_base = _TIME_BASE
                self._video_stream = video_stream
            if self._audio is not None:
                audio_stream = container.add_mux_stream("aac", rate=self._audio.sample_rate)
                audio_stream.time_base = _TIME_BASE
                self._audio_stream = audio_stream
        except av.error.FFmpegError as exc:
            raise MuxError(f"cannot open the mpegts muxer: {exc}") from exc
        self._sink = sink
        self._container = container

    def write(self, kind: TrackKind, pts: int, dts: int, data: bytes, keyframe: bool) -> None:
        container = self._container
        if container is None:
            raise MuxError("no segment is open")
        if kind is TrackKind.VIDEO:
            if self._annexb is None or self._video_stream is None:
                return
            stream = self._video_stream
            try:
                payload = self._annexb.convert(data, keyframe)
            except CodecError as exc:
                raise MuxError(f"malformed video access unit: {exc}") from exc
        else:
            if self._adts is None or self._audio_stream is None:
                return
            stream = self._audio_stream
            try:
                payload = self._adts.frame(data)
            except CodecError as exc:
                raise MuxError(f"malformed audio frame: {exc}") from exc
        packet = av.Packet(payload)
        packet.stream = stream
        packet.time_base = _TIME_BASE
        packet.pts = pts
        packet.dts = dts
        packet.is_keyframe = keyframe
        try:
            container.mux_one(packet)
        except av.error.FFmpegError as exc:
            raise MuxError(f"mpegts muxer rejected a packet: {exc}") from exc

    def close_segment(self) -> bytes:
        container, sink = self._container, self._sink
        if container is None or sink is None:
            raise MuxError("no segment is open")
        self._reset()
        try:
            container.close()
        except av.error.FFmpegError as exc:
            raise MuxError(f"cannot finish the segment: {exc}") from exc
        carry_continuity(sink.buffer, self.continuity)
        return bytes(sink.buffer)

    def abort_segment(self) -> None:
        """Drop the open segment, if any (after a muxing error)."""
        container = self._container
        self._reset()
        if container is not None:
            try:
                container.close()
            except av.error.FFmpegError:
                # The segment is being thrown away after an earlier error already logged.
                logger.debug("closing an aborted segment failed", exc_info=True)

    def _reset(self) -> None:
        self._container = None
        self._sink = None
        self._video_stream = None
        self._audio_stream = None
