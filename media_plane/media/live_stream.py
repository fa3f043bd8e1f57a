"""A stream being published right now, and the readers attached to it."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from media_plane.media.errors import MediaPlaneError
from media_plane.media.hooks import PublishGrant
from media_plane.media.protocol import MediaProtocol
from media_plane.media.units import AudioTrack, MediaPacket, VideoTrack

logger = logging.getLogger(__name__)


class StreamReader(Protocol):
    """Something that consumes a live stream (an HLS packager, a WebRTC fan-out...).

    Calls arrive on the event loop from the publisher's connection; a reader must return
    quickly and hand any heavy work to its own thread or task.
    """

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None: ...

    def on_packet(self, packet: MediaPacket) -> None: ...

    def on_end(self) -> None: ...


class LiveStream:
    def __init__(self, grant: PublishGrant, protocol: MediaProtocol, client_addr: str) -> None:
        self.grant = grant
        self.protocol = protocol
        self.client_addr = client_addr
        #: Identifies this publish in events; a re-publish gets a new one.
        self.session_id = uuid.uuid4().hex
        self.started_at = time.time()
        self.video: VideoTrack | None = None
        self.audio: AudioTrack | None = None
        self.ended = False
        #: Why the publish ended, as the protocol saw it: "publisher_stopped",
        #: "publisher_lost", "node_stopped" or "protocol_error".
        self.end_reason = "publisher_stopped"
        self.bytes_in = 0
        self.packets_in = 0
        self._readers: list[StreamReader] = []

    @property
    def stream_id(self) -> str:
        return self.grant.stream_id

    @property
    def playback_id(self) -> str:
        return self.grant.playback_id

    def attach(self, reader: StreamReader) -> Callable[[], None]:
        """Attach a reader; returns a function that detaches it."""
        self._readers.append(reader)
        if self.video is not None or self.audio is not None:
            reader.on_tracks(self.video, self.audio)

        def detach() -> None:
            if reader in self._readers:
                self._readers.remove(reader)

        return detach

    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.video, self.audio = video, audio
        for reader in list(self._readers):
            self._call(reader.on_tracks, video, audio)

    def push(self, packet: MediaPacket) -> None:
        self.bytes_in += len(packet.data)
        self.packets_in += 1
        for reader in list(self._readers):
            self._call(reader.on_packet, packet)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for reader in list(self._readers):
            self._call(reader.on_end)
        self._readers.clear()

    def _call(self, method: Callable[..., None], *args: object) -> None:
        # One broken reader must never stop the publisher or the other readers.
        try:
            method(*args)
        except Exception:
            logger.exception("stream %s: reader %r failed", self.stream_id, method)


class AlreadyLiveError(MediaPlaneError):
    """A second publisher tried to take a stream that is live."""


class StreamRegistry:
    """The live streams of one engine, by stream id and by playback id."""

    def __init__(self) -> None:
        self._by_id: dict[str, LiveStream] = {}
        self._by_playback: dict[str, LiveStream] = {}
        self._on_start: list[Callable[[LiveStream], None]] = []

    def on_start(self, callback: Callable[[LiveStream], None]) -> None:
        """Call `callback` for every stream that starts (outputs attach their readers)."""
        self._on_start.append(callback)

    def start(self, grant: PublishGrant, protocol: MediaProtocol, client_addr: str) -> LiveStream:
        if grant.stream_id in self._by_id:
            raise AlreadyLiveError(grant.stream_id)
        stream = LiveStream(grant, protocol, client_addr)
        self._by_id[grant.stream_id] = stream
        self._by_playback[grant.playback_id] = stream
        for callback in self._on_start:
            callback(stream)
        return stream

    def finish(self, stream: LiveStream, reason: str | None = None) -> None:
        if reason is not None and not stream.ended:
            stream.end_reason = reason
        if self._by_id.get(stream.stream_id) is stream:
            del self._by_id[stream.stream_id]
            del self._by_playback[stream.playback_id]
        stream.end()

    def is_live(self, stream_id: str) -> bool:
        return stream_id in self._by_id

    def by_playback_id(self, playback_id: str) -> LiveStream | None:
        return self._by_playback.get(playback_id)

    def live(self) -> list[LiveStream]:
        return list(self._by_id.values())
