"""A publisher's FLV audio/video messages turned into tracks and packets for a stream.

Pure: the session hands it messages and a sink (the LiveStream once the publish is
granted). The rules it keeps:

* Sequence headers are remembered even before the sink is attached, so an encoder that
  does not wait for NetStream.Publish.Start loses only frames, never its configuration.
* The sink hears `set_tracks` once both configurations are known, or at the first frame
  when only one of them is; afterwards again only when a configuration really changes
  (encoders may repeat an identical sequence header).
* A frame whose track has no configuration yet is dropped: readers never get packets
  for a track they were not told about.
* RTMP timestamps are 32-bit milliseconds that wrap after about 49.7 days; they are
  unwrapped by following the signed difference from the previous message, so that dts
  keeps growing (and small reorderings between audio and video stay small).
"""

from __future__ import annotations

from typing import Protocol

from media_plane.media import AudioTrack, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp.chunks import AGGREGATE, AUDIO, VIDEO
from media_plane.protocols.rtmp.errors import MediaFormatError
from media_plane.protocols.rtmp.flv import (
    AudioConfig,
    FlvUnit,
    VideoConfig,
    parse_audio,
    parse_video,
    split_aggregate,
)

__all__ = ["MediaFeed", "StreamSink"]

_WRAP = 1 << 32
_HALF = 1 << 31


class StreamSink(Protocol):
    """What the feed needs of a live stream."""

    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None: ...

    def push(self, packet: MediaPacket) -> None: ...


class MediaFeed:
    def __init__(self) -> None:
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = None
        #: Frames dropped: before a sink was attached, or without a track configuration.
        self.dropped = 0
        self._sink: StreamSink | None = None
        self._announced = False
        self._last_raw: int | None = None
        self._last_ms = 0

    def attach(self, sink: StreamSink) -> None:
        self._sink = sink
        if self.video is not None and self.audio is not None:
            self._announce()

    def detach(self) -> None:
        self._sink = None

    def message(self, type_id: int, timestamp: int, payload: bytes) -> None:
        """One RTMP audio, video or aggregate message (other types are ignored)."""
        if type_id == VIDEO:
            self._unit(parse_video(payload, self._unwrap(timestamp)))
        elif type_id == AUDIO:
            self._unit(parse_audio(payload, self._unwrap(timestamp)))
        elif type_id == AGGREGATE:
            for sub_type, sub_ms, body in split_aggregate(payload, self._unwrap(timestamp)):
                if sub_type == VIDEO:
                    self._unit(parse_video(body, sub_ms))
                elif sub_type == AUDIO:
                    self._unit(parse_audio(body, sub_ms))
                elif sub_type == AGGREGATE:
                    raise MediaFormatError("nested aggregate message")

    def _unwrap(self, raw: int) -> int:
        last = self._last_raw
        if last is None:
            ms = raw
        else:
            delta = (raw - last) % _WRAP
            ms = self._last_ms + (delta - _WRAP if delta >= _HALF else delta)
        self._last_raw = raw
        self._last_ms = ms
        return ms

    def _unit(self, unit: FlvUnit) -> None:
        if isinstance(unit, MediaPacket):
            sink = self._sink
            track = self.video if unit.kind is TrackKind.VIDEO else self.audio
            if sink is None or track is None:
                self.dropped += 1
                return
            if not self._announced:
                self._announce()
            sink.push(unit)
        elif isinstance(unit, VideoConfig):
            if unit.track != self.video:
                self.video = unit.track
                self._changed()
        elif isinstance(unit, AudioConfig) and unit.track != self.audio:
            self.audio = unit.track
            self._changed()

    def _changed(self) -> None:
        if self._announced or (self.video is not None and self.audio is not None):
            self._announce()

    def _announce(self) -> None:
        if self._sink is not None:
            self._announced = True
            self._sink.set_tracks(self.video, self.audio)
