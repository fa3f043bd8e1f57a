"""The RTMP ingest server: accepts connections and owns their sessions and tasks.

    server = RtmpServer(registry, hooks, "0.0.0.0", 1935)
    await server.start()      # binds; `server.port` is the bound port (port 0 allowed)
    ...
    await server.stop()       # closes the listener, every session and every task

Timeouts, all checked by one sweeper task: a connection must finish the handshake
within `handshake_timeout`; one that sends nothing for `idle_timeout` is dropped; one
that is not publishing (nor waiting for a publish decision) for `publish_timeout` is
dropped too. Beyond `max_connections` new connections are accepted and closed at once.
The same sweep tunes how many bytes the kernel gathers before waking a publishing
connection (`read_batching`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from media_plane.media.hooks import EngineHooks
from media_plane.media.live_stream import StreamRegistry
from media_plane.servers.rtmp.session import RtmpSession, SessionOptions

__all__ = ["RtmpServer"]

logger = logging.getLogger(__name__)

_STOP_GRACE = 2.0


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
        publish_timeout: float = 30.0,
        max_connections: int = 1000,
        options: SessionOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self.host = host
        self._requested_port = port
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._publish_timeout = publish_timeout
        self._max_connections = max_connections
        self._options = options if options is not None else SessionOptions()
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._sessions: set[RtmpSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._all_closed = asyncio.Event()
        self._port = 0
        self.connections_total = 0
        #: Connections cut by the server: timeouts, limits, protocol errors excluded.
        self.connections_dropped = 0

    @property
    def port(self) -> int:
        """The bound port (stays readable after stop)."""
        if not self._port:
            raise RuntimeError("RTMP server not started")
        return self._port

    @property
    def sessions(self) -> int:
        """Open connections."""
        return len(self._sessions)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("RTMP server already started")
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
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        for session in list(self._sessions):
            session.drop("server stopping", reason="node_stopped", level=logging.INFO)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sessions:
            # Aborted transports report connection_lost on the next loop iterations.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_closed.wait(), _STOP_GRACE)
        await server.wait_closed()
        logger.info("RTMP ingest on %s:%d stopped", self.host, self._port)

    def _new_session(self) -> RtmpSession:
        self.connections_total += 1
        reject = None
        if len(self._sessions) >= self._max_connections:
            # Accept, then close at once: the listener must keep serving everyone else.
            self.connections_dropped += 1
            reject = "too many connections"
        session = RtmpSession(
            self._registry,
            self._hooks,
            self._options,
            spawn=self._spawn,
            on_close=self._closed,
            clock=self._clock,
            number=self.connections_total,
            reject=reject,
        )
        self._sessions.add(session)
        self._all_closed.clear()
        return session

    def _closed(self, session: RtmpSession) -> None:
        self._sessions.discard(session)
        if not self._sessions:
            self._all_closed.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("task %s failed", task.get_name(), exc_info=task.exception())

    def _sweep_interval(self) -> float:
        shortest = min(self._handshake_timeout, self._idle_timeout, self._publish_timeout)
        return max(0.05, min(1.0, shortest / 4))

    async def _sweep(self) -> None:
        interval = self._sweep_interval()
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            for session in list(self._sessions):
                why = self._overdue(session, now)
                if why is not None:
                    self.connections_dropped += 1
                    session.drop(why)
                else:
                    session.tune_reads(now)

    def _overdue(self, session: RtmpSession, now: float) -> str | None:
        if not session.handshake_done:
            if now - session.opened_at > self._handshake_timeout:
                return "handshake timed out"
            return None
        if now - session.last_data_at > self._idle_timeout:
            return f"nothing received for {self._idle_timeout:g} s"
        if not session.publishing and now - session.unpublished_since > self._publish_timeout:
            return f"no publish within {self._publish_timeout:g} s"
        return None
