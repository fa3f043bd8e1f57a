"""Engine hooks for benchmarks: every key may publish (playback id = key), every playback
id may play, events are dropped."""

from __future__ import annotations

from media_plane.edge_engine import EngineEvent, PlayDecision, PublishDecision, PublishGrant
from media_plane.media.protocol import MediaProtocol


class AllowAll:
    def __init__(self, segment_duration: float | None = None) -> None:
        #: The HLS target duration granted (None: the engine's default).
        self.segment_duration = segment_duration

    async def authorize_publish(
        self, key: str, protocol: MediaProtocol, client_addr: str
    ) -> PublishDecision:
        if self.segment_duration is None:
            return PublishDecision.allow(PublishGrant(stream_id=key, playback_id=key))
        return PublishDecision.allow(
            PublishGrant(stream_id=key, playback_id=key, segment_duration=self.segment_duration)
        )

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        return PlayDecision(allowed=True)

    def emit(self, event: EngineEvent) -> None:
        pass
