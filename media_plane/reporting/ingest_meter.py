"""Measures a live stream's ingest (bitrate, frame rate, keyframe interval): pure."""

from __future__ import annotations

from dataclasses import dataclass

from media_plane.media.units import TIMEBASE_HZ, AudioTrack, MediaPacket, TrackKind, VideoTrack


@dataclass(frozen=True, slots=True)
class IngestSample:
    bitrate_bps: int
    fps: float
    keyframe_interval_s: float
    interval_s: float


class IngestMeter:
    """A StreamReader that counts what arrives; `sample()` returns and resets the window."""

    def __init__(self, now: float) -> None:
        self._window_start = now
        self._bytes = 0
        self._video_frames = 0
        self._last_keyframe_dts: int | None = None
        self._keyframe_interval = 0.0
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = None
        self.total_bytes = 0
        self.last_bitrate_bps = 0

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.video, self.audio = video, audio

    def on_packet(self, packet: MediaPacket) -> None:
        size = len(packet.data)
        self._bytes += size
        self.total_bytes += size
        if packet.kind is TrackKind.VIDEO:
            self._video_frames += 1
            if packet.keyframe:
                if self._last_keyframe_dts is not None and packet.dts > self._last_keyframe_dts:
                    self._keyframe_interval = (packet.dts - self._last_keyframe_dts) / TIMEBASE_HZ
                self._last_keyframe_dts = packet.dts

    def on_end(self) -> None:
        pass

    def sample(self, now: float) -> IngestSample:
        elapsed = max(now - self._window_start, 1e-6)
        sample = IngestSample(
            bitrate_bps=int(self._bytes * 8 / elapsed),
            fps=round(self._video_frames / elapsed, 2),
            keyframe_interval_s=round(self._keyframe_interval, 3),
            interval_s=elapsed,
        )
        self.last_bitrate_bps = sample.bitrate_bps
        self._window_start, self._bytes, self._video_frames = now, 0, 0
        return sample
