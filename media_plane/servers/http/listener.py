"""A listening socket for the edge's HTTP servers: capped accepts that survive EMFILE.

asyncio's own accept loop keeps every connection it can accept and, when the process is
out of descriptors, logs a traceback each retry. This one asks `AddressSlots` before
keeping a connection (past a cap the socket is closed at once, so one client address
cannot hold the server's descriptors), and on EMFILE, ENFILE, ENOBUFS or ENOMEM stops
accepting for a backoff that doubles while accepts keep failing, logging one line per
interval. Connections waiting in the kernel's backlog are accepted once descriptors free
up. Works on asyncio's loop and on uvloop (both implement `add_reader` and
`connect_accepted_socket`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from media_plane.servers.http.limits import AddressSlots, ConnectionLimits

__all__ = ["Listener"]

logger = logging.getLogger(__name__)

#: Running out of these is temporary: back off and retry.
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Accepts per wake-up, so a connect storm cannot hold the loop.
_ACCEPTS_PER_WAKEUP = 64

#: Builds the protocol of an admitted connection from its client address.
ProtocolFactory = Callable[[str], asyncio.BaseProtocol]


class Listener:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        limits: ConnectionLimits,
        protocol_factory: ProtocolFactory,
        *,
        backlog: int = 1024,
    ) -> None:
        self.name = name
        self._host = host
        self._requested_port = port
        self._limits = limits
        self._factory = protocol_factory
        self._backlog = backlog
        self.slots = AddressSlots(limits.max_connections, limits.max_connections_per_address)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: set[asyncio.Task[None]] = set()
        self._resume: asyncio.TimerHandle | None = None
        self._backoff = limits.accept_backoff_s
        self._last_report = float("-inf")
        self._failures_unreported = 0
        self.port = 0
        #: Connections closed at accept because a cap was reached.
        self.refused = 0
        #: Accepts that failed for lack of descriptors or memory.
        self.accept_failures = 0

    def start(self) -> None:
        """Binds and starts accepting; raises OSError (EADDRINUSE, ...) if it cannot bind."""
        if self._sock is not None:
            raise RuntimeError(f"{self.name} is already listening")
        family, kind, proto, _, address = socket.getaddrinfo(
            self._host, self._requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self._backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self.port = int(sock.getsockname()[1])
        self._loop.add_reader(sock.fileno(), self._accept)

    async def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None or self._loop is None:
            return
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self._loop.remove_reader(sock.fileno())
        sock.close()
        tasks = list(self._connecting)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def release(self, address: str) -> None:
        """Gives back the slot of a connection from `address` once it has closed."""
        self.slots.release(address)

    def _accept(self) -> None:
        sock = self._sock
        if sock is None or self._loop is None:
            return
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self._pause(exc)
                    return
                # The client gave up between connect and accept (ECONNABORTED and the
                # like): nothing to serve.
                continue
            self._backoff = self._limits.accept_backoff_s
            address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if not self.slots.admit(address):
                self.refused += 1
                conn.close()
                continue
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn, address))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket, address: str) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(lambda: self._factory(address), conn)
        except BaseException:
            # The protocol never saw the connection, so nothing else releases its slot.
            self.slots.release(address)
            conn.close()
            raise

    def _pause(self, exc: OSError) -> None:
        assert self._loop is not None and self._sock is not None
        self.accept_failures += 1
        self._failures_unreported += 1
        now = self._loop.time()
        if now - self._last_report >= self._limits.accept_error_log_interval_s:
            logger.warning(
                "%s cannot accept connections (%s: %s); %d failed accepts, "
                "%d connections open; pausing accepts, retrying with backoff",
                self.name,
                errno.errorcode.get(exc.errno or 0, exc.errno),
                exc.strerror,
                self._failures_unreported,
                self.slots.open,
            )
            self._last_report = now
            self._failures_unreported = 0
        self._loop.remove_reader(self._sock.fileno())
        self._resume = self._loop.call_later(self._backoff, self._resume_accepting)
        self._backoff = min(self._backoff * 2, self._limits.accept_backoff_max_s)

    def _resume_accepting(self) -> None:
        self._resume = None
        if self._sock is None or self._loop is None:
            return
        self._loop.add_reader(self._sock.fileno(), self._accept)
