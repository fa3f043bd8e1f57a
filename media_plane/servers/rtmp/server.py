"""The RTMP ingest server: accepts connections and owns their sessions and tasks.

    server = RtmpServer(registry, hooks, "0.0.0.0", 1935)
    await server.start()      # binds; `server.port` is the bound port (port 0 allowed)
    ...
    await server.stop()       # closes the listener, every session and every task

Limits (`RtmpLimits`). Timeouts, all checked by one sweeper task: a connection must
finish the handshake within `handshake_timeout_s`; one that sends nothing for
`idle_timeout_s` is dropped; one that is not publishing (nor waiting for a publish
decision) for `publish_timeout_s` is dropped too. Slots: at `max_connections` open
connections, or `max_connections_per_address` from one IP address, the oldest
connection without an authorized publish (of all, or of that address) is cut to make
room; when every one of them publishes, the new connection is accepted and closed at
once. Memory: when the messages all connections hold half-assembled pass
`max_total_buffered_bytes`, the oldest unauthorized connections holding any are cut,
then, if that is not enough, the connection that went over. What one connection may
send is bounded in the session.

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
from media_plane.servers.rtmp.limits import RtmpLimits
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
        limits: RtmpLimits | None = None,
        options: SessionOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self.host = host
        self._requested_port = port
        self._limits = limits if limits is not None else RtmpLimits()
        self._options = options if options is not None else SessionOptions()
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._sessions: set[RtmpSession] = set()
        #: Admitted connections, oldest first, with the bytes each holds half-assembled.
        self._admitted: dict[RtmpSession, int] = {}
        self._by_address: dict[str, dict[RtmpSession, None]] = {}
        self._buffered = 0
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

    @property
    def buffered(self) -> int:
        """Bytes all connections hold half-assembled."""
        return self._buffered

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
            session.drop("server stopping", reason="node_stopped", level=logging.INFO, limit=False)
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
        session = RtmpSession(
            self._registry,
            self._hooks,
            self._options,
            self._limits,
            spawn=self._spawn,
            on_open=self._admit,
            on_buffered=self._holds,
            on_close=self._closed,
            clock=self._clock,
            number=self.connections_total,
        )
        self._sessions.add(session)
        self._all_closed.clear()
        return session

    def _admit(self, session: RtmpSession) -> str | None:
        """Makes room for a new connection, or says why it is refused. Refused ones are
        accepted and closed at once: the listener keeps serving everyone else."""
        limits = self._limits
        peers = self._by_address.setdefault(session.client_host, {})
        if len(peers) >= limits.max_connections_per_address:
            victim = _oldest_unauthorized(peers)
            if victim is None:
                self.connections_dropped += 1
                return "too many connections from this address"
            self._cut(victim, "cut to make room for a newer connection from its address")
        if len(self._admitted) >= limits.max_connections:
            victim = _oldest_unauthorized(self._admitted)
            if victim is None:
                self.connections_dropped += 1
                return "too many connections"
            self._cut(victim, "cut to make room for a newer connection")
        peers[session] = None
        self._admitted[session] = 0
        return None

    def _holds(self, session: RtmpSession, buffered: int) -> None:
        """`session` now holds `buffered` bytes half-assembled."""
        held = self._admitted.get(session)
        if held is None:
            return
        self._admitted[session] = buffered
        self._buffered += buffered - held
        limit = self._limits.max_total_buffered_bytes
        if self._buffered <= limit:
            return
        for other, other_held in list(self._admitted.items()):
            if other_held and not other.authorized:
                self._cut(other, "cut to free buffer memory for other connections")
                if self._buffered <= limit:
                    return
        if session in self._admitted:
            self._cut(session, "buffer memory shared by all connections is used up")

    def _cut(self, session: RtmpSession, why: str) -> None:
        self._forget(session)
        self.connections_dropped += 1
        session.drop(why)

    def _forget(self, session: RtmpSession) -> None:
        held = self._admitted.pop(session, None)
        if held is None:
            return
        self._buffered -= held
        peers = self._by_address.get(session.client_host)
        if peers is not None:
            peers.pop(session, None)
            if not peers:
                del self._by_address[session.client_host]

    def _closed(self, session: RtmpSession) -> None:
        if session in self._admitted and session.hit_limit:
            self.connections_dropped += 1  # cut by the session itself (a budget)
        self._forget(session)
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
        limits = self._limits
        shortest = min(limits.handshake_timeout_s, limits.idle_timeout_s, limits.publish_timeout_s)
        return max(0.05, min(1.0, shortest / 4))

    async def _sweep(self) -> None:
        interval = self._sweep_interval()
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            for session in list(self._admitted):
                why = self._overdue(session, now)
                if why is not None:
                    self._cut(session, why)
                else:
                    session.tune_reads(now)

    def _overdue(self, session: RtmpSession, now: float) -> str | None:
        limits = self._limits
        if not session.handshake_done:
            if now - session.opened_at > limits.handshake_timeout_s:
                return "handshake timed out"
            return None
        if now - session.last_data_at > limits.idle_timeout_s:
            return f"nothing received for {limits.idle_timeout_s:g} s"
        if not session.publishing and now - session.unpublished_since > limits.publish_timeout_s:
            return f"no publish within {limits.publish_timeout_s:g} s"
        return None


def _oldest_unauthorized(sessions: dict[RtmpSession, Any]) -> RtmpSession | None:
    """The first (oldest) of `sessions` without an authorized publish."""
    for session in sessions:
        if not session.authorized:
            return session
    return None
