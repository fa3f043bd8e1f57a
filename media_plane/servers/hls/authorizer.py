"""Play authorization for the HLS edge: the engine hook behind a short-lived cache.

Players poll the playlist every target duration, so asking the hook on every poll would put
the control plane on the playlist's hot path. Allow decisions are cached per
(playback id, token) for `ttl` seconds; denials are not, so a fixed token works at once.
Concurrent misses for the same key share one hook call, and a hook that fails or does not
answer within `timeout` yields an `UNAVAILABLE` denial.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from media_plane.media.hooks import PlayDecision, PlayDenial
from media_plane.media.protocol import MediaProtocol

__all__ = ["PlayAuthorization", "PlayAuthorizer"]

logger = logging.getLogger(__name__)

_Key = tuple[str, str | None]


class PlayAuthorization(Protocol):
    """The part of `EngineHooks` the HLS server needs."""

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision: ...


class PlayAuthorizer:
    def __init__(
        self,
        hooks: PlayAuthorization,
        *,
        ttl: float = 5.0,
        timeout: float = 5.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hooks = hooks
        self._ttl = ttl
        self._timeout = timeout
        self._max_entries = max_entries
        self._clock = clock
        self._allowed: dict[_Key, float] = {}
        self._pending: dict[_Key, asyncio.Future[PlayDecision]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.hook_calls = 0
        self.cache_hits = 0

    def cached_allow(self, playback_id: str, token: str | None) -> bool:
        """True when a fresh allow decision is cached (the hot path: no await, no task)."""
        expires = self._allowed.get((playback_id, token))
        if expires is None:
            return False
        if self._clock() >= expires:
            del self._allowed[(playback_id, token)]
            return False
        self.cache_hits += 1
        return True

    def authorize(
        self, playback_id: str, token: str | None, client_addr: str
    ) -> asyncio.Future[PlayDecision]:
        """Ask the hook, sharing the call with concurrent requests for the same key."""
        key = (playback_id, token)
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        future: asyncio.Future[PlayDecision] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        task = asyncio.create_task(self._ask(key, client_addr, future), name="hls-authorize-play")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return future

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()

    def purge_expired(self) -> None:
        now = self._clock()
        for key in [k for k, expires in self._allowed.items() if expires <= now]:
            del self._allowed[key]

    async def _ask(self, key: _Key, client_addr: str, future: asyncio.Future[PlayDecision]) -> None:
        playback_id, token = key
        self.hook_calls += 1
        try:
            async with asyncio.timeout(self._timeout):
                decision = await self._hooks.authorize_play(
                    playback_id, token, client_addr, MediaProtocol.HLS
                )
        except TimeoutError:
            logger.warning("authorize_play for %s timed out", playback_id)
            decision = PlayDecision(False, PlayDenial.UNAVAILABLE, "authorization timed out")
        except asyncio.CancelledError:
            self._pending.pop(key, None)
            future.cancel()
            raise
        except Exception:
            logger.exception("authorize_play for %s failed", playback_id)
            decision = PlayDecision(False, PlayDenial.UNAVAILABLE, "authorization failed")
        if decision.allowed:
            if len(self._allowed) >= self._max_entries:
                self.purge_expired()
                if len(self._allowed) >= self._max_entries:
                    self._allowed.clear()
            self._allowed[key] = self._clock() + self._ttl
        self._pending.pop(key, None)
        if not future.done():
            future.set_result(decision)
