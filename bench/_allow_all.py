"""Engine hooks for benchmarks: every key may publish (playback id = key), every playback
id may play, events are dropped."""

from __future__ import annotations

from media_plane.edge_engine import EngineEvent, PlayDecision, PublishDecision, PublishGrant


class AllowAll:
    async def authorize_publish(self, key: str, protocol: str, client_addr: str) -> PublishDecision:
        return PublishDecision.allow(PublishGrant(stream_id=key, playback_id=key))

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str
    ) -> PlayDecision:
        return PlayDecision(allowed=True)

    def emit(self, event: EngineEvent) -> None:
        pass
