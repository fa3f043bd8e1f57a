"""A real media engine on loopback (RTMP, HLS, WHIP/WHEP) with hooks the tests steer, and
an HTTP client for its WHIP/WHEP server. ICE consent checks are shortened for the tests
that wait for a vanished peer (aioice's module constants; aiortc's tests do the same)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
import pytest_asyncio

from media_plane.edge_engine import (
    EngineEvent,
    EngineSettings,
    MediaEngine,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishGrant,
)
from media_plane.media.protocol import MediaProtocol

GOOD_KEY = "sk_good"
DISABLED_KEY = "sk_disabled"
PRIVATE_KEY = "sk_private"
PLAYBACK_ID = "pb_public"
PRIVATE_PLAYBACK_ID = "pb_private"
PLAY_TOKEN = "token-ok"

EventT = TypeVar("EventT", bound=EngineEvent)


@dataclass
class Hooks:
    events: list[EngineEvent] = field(default_factory=list)
    publish_calls: list[tuple[str, MediaProtocol]] = field(default_factory=list)
    play_calls: list[tuple[str, MediaProtocol]] = field(default_factory=list)

    async def authorize_publish(
        self, key: str, protocol: MediaProtocol, client_addr: str
    ) -> PublishDecision:
        self.publish_calls.append((key, protocol))
        if key == GOOD_KEY:
            return PublishDecision.allow(PublishGrant("stream-1", PLAYBACK_ID))
        if key == PRIVATE_KEY:
            return PublishDecision.allow(PublishGrant("stream-2", PRIVATE_PLAYBACK_ID))
        if key == DISABLED_KEY:
            return PublishDecision.deny(PublishDenial.STREAM_DISABLED, "stream disabled")
        return PublishDecision.deny(PublishDenial.INVALID_KEY, "unknown stream key")

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        self.play_calls.append((playback_id, protocol))
        if playback_id == PLAYBACK_ID:
            return PlayDecision(True)
        if playback_id == PRIVATE_PLAYBACK_ID:
            if token == PLAY_TOKEN:
                return PlayDecision(True)
            return PlayDecision(False, PlayDenial.TOKEN_REQUIRED, "playback token required")
        return PlayDecision(False, PlayDenial.UNKNOWN, "unknown playback id")

    def emit(self, event: EngineEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[EventT]) -> list[EventT]:
        """The events emitted of one kind, typed as that kind."""
        return [event for event in self.events if isinstance(event, kind)]

    def kinds(self) -> list[str]:
        return [event.kind.value for event in self.events]


@dataclass
class Edge:
    engine: MediaEngine
    hooks: Hooks
    http: httpx.AsyncClient

    @property
    def rtmp_base(self) -> str:
        return f"rtmp://127.0.0.1:{self.engine.rtmp_port}/live"

    @property
    def hls_base(self) -> str:
        return f"http://127.0.0.1:{self.engine.http_port}"

    async def wait_for(self, condition: object, timeout: float = 10.0) -> None:
        assert callable(condition)
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)


def has_video(engine: MediaEngine, playback_id: str = PLAYBACK_ID) -> bool:
    """Whether the stream's video has reached its WHEP fan-out."""
    sessions = engine.webrtc
    fanout = sessions.fanout(playback_id) if sessions is not None else None
    return fanout is not None and fanout.video is not None


def edge_settings(**overrides: object) -> EngineSettings:
    values: dict[str, object] = {
        "rtmp_port": 0,
        "http_port": 0,
        "webrtc_enabled": True,
        "webrtc_port": 0,
        "ice_host_addresses": ("127.0.0.1",),
        "webrtc_connect_timeout_s": 5.0,
        "health_interval_s": 1.0,
    }
    values.update(overrides)
    return EngineSettings.model_validate(values)


@pytest_asyncio.fixture
async def edge() -> AsyncIterator[Edge]:
    hooks = Hooks()
    engine = MediaEngine(edge_settings(), hooks)
    await engine.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{engine.webrtc_port}", timeout=10.0
        ) as http:
            yield Edge(engine, hooks, http)
    finally:
        await engine.stop()
