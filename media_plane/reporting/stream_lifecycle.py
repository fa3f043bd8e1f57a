"""A publish's start and end as the host hears of them.

A stream starts when media flows (its codecs are known from the first frames), not when
the publish is accepted: a WHIP publish holds its key from the answer on, but a peer that
never connects must not look live. A publish that ends without media ends silently: no
started event, so no ended event either.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from media_plane.media.events import EngineEvent, MediaInfo, StreamEnded, StreamStarted
from media_plane.media.live_stream import LiveStream
from media_plane.media.units import AudioTrack, MediaPacket, VideoTrack
from media_plane.reporting.ingest_meter import IngestMeter

__all__ = ["StreamLifecycle"]


class StreamLifecycle:
    """A StreamReader attached to every stream the registry starts."""

    def __init__(
        self,
        stream: LiveStream,
        meter: IngestMeter,
        emit: Callable[[EngineEvent], None],
        finished: Callable[[], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream
        self.meter = meter
        self._emit = emit
        self._finished = finished
        self._wall = wall
        self.started = False
        #: Wall-clock time of the started event: the stream's duration counts from it.
        self.started_at = 0.0

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.meter.on_tracks(video, audio)
        if self.started:
            return
        self.started = True
        self.started_at = self._wall()
        stream = self.stream
        self._emit(
            StreamStarted(
                stream_id=stream.stream_id,
                occurred_at=self.started_at,
                session_id=stream.session_id,
                protocol=stream.protocol,
                client_addr=stream.client_addr,
                media=MediaInfo(
                    video_codec=video.codec.value if video else "",
                    width=video.width if video else 0,
                    height=video.height if video else 0,
                    audio_codec=audio.codec.value if audio else "",
                    audio_sample_rate=audio.sample_rate if audio else 0,
                    audio_channels=audio.channels if audio else 0,
                ),
            )
        )

    def on_packet(self, packet: MediaPacket) -> None:
        self.meter.on_packet(packet)

    def on_end(self) -> None:
        if self.started:
            stream = self.stream
            now = self._wall()
            self._emit(
                StreamEnded(
                    stream_id=stream.stream_id,
                    occurred_at=now,
                    session_id=stream.session_id,
                    protocol=stream.protocol,
                    reason=stream.end_reason,
                    duration_ms=int((now - self.started_at) * 1000),
                    bytes_in=self.meter.total_bytes,
                )
            )
        self._finished()
