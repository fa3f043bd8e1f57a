"""The RTMP ingest server: accepts connections and owns their sessions and tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from media_plane.engine.hooks import EngineHooks
from media_plane.engine.live_stream import StreamRegistry
from media_plane.protocols.rtmp.session import RtmpSession

logger = logging.getLogger(__name__)


class RtmpServer:
    def __init__(
        self,
        registry: StreamRegistry,
        hooks: EngineHooks,
        host: str = "127.0.0.1",
        port: int = 1935,
        *,
        handshake_timeout: float = 10.0,
        idle_timeout: float = 30.0,
        max_connections: int = 1000,
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self.host = host
        self._requested_port = port
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._sessions: set[RtmpSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._port = 0
        self.connections_total = 0
        self.connections_dropped = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("RTMP server not started")
        return self._port

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_session, self.host, self._requested_port, reuse_address=True
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep(), name="rtmp-sweeper")
        logger.info("RTMP ingest listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for session in list(self._sessions):
            session.drop("server stopping", reason="node_stopped")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    def _new_session(self) -> RtmpSession:
        session = RtmpSession(self._registry, self._hooks, self._spawn, self._closed)
        self._sessions.add(session)
        self.connections_total += 1
        if len(self._sessions) > self._max_connections:
            # Accept, then drop at once: the listener must keep serving everyone else.
            asyncio.get_running_loop().call_soon(session.drop, "too many connections")
        return session

    def _closed(self, session: RtmpSession) -> None:
        self._sessions.discard(session)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for session in list(self._sessions):
                if not session.handshake_done and now - session.opened_at > (
                    self._handshake_timeout
                ):
                    self.connections_dropped += 1
                    session.drop("handshake timed out")
                elif now - session.last_data_at > self._idle_timeout:
                    self.connections_dropped += 1
                    session.drop("no data")
