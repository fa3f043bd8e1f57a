"""Fewer wakeups per publisher: the kernel holds a publisher's bytes until ~100 ms of
them have arrived, so one read carries several messages.

Why: with one 3 Mbit/s publisher the engine's CPU went to waking up, not to work. FFmpeg
and OBS write each FLV tag as soon as it is muxed, so the socket turned readable ~100
times a second, and every wakeup ran an event-loop iteration, a `recv` and a hand-off to
the packager thread: ~170 context switches and ~1.7% of a core per stream, while parsing
and muxing the same bytes cost ~0.15% (docs/benchmarks-history.md, 2026-12-04). On Linux,
`SO_RCVLOWAT` makes epoll report a TCP socket readable only once that many bytes are
queued (or on FIN or an error), and lowering it wakes a waiting reader at once.

The watermark follows the publisher: each `tune` (the server's sweep, once a second) sets
it to what the last interval delivered in `BATCH_SECONDS`, so a stream is held back at
most about that long. A publisher that stalls delivers nothing in the next interval,
which sets the watermark back to one byte: bytes stranded below it wait at most about two
intervals. It stays below a quarter of the peer's acknowledgement window (a publisher
waiting for our acknowledgement must never wait on bytes we hold back) and below
`MAX_WATERMARK`. Only publishing connections are tuned: commands expect replies and must
be read at once, so the watermark goes back to one byte when a publish ends.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Protocol

__all__ = ["BATCH_SECONDS", "MAX_WATERMARK", "ReadBatching", "low_watermark"]

logger = logging.getLogger(__name__)

#: How much of a publisher's media the kernel may hold before waking us.
BATCH_SECONDS = 0.1
#: Upper bound in bytes (a 5 Mbit/s stream reaches it at `BATCH_SECONDS`).
MAX_WATERMARK = 64 * 1024
#: Only Linux's epoll semantics (readable at the watermark, woken when it is lowered) are
#: relied on and tested; elsewhere the option is left alone.
_SUPPORTED = sys.platform == "linux" and hasattr(socket, "SO_RCVLOWAT")


class SocketOptions(Protocol):
    """What is needed of a socket (asyncio hands out a `TransportSocket`)."""

    def setsockopt(self, level: int, optname: int, value: int, /) -> None: ...


def low_watermark(delivered: int, interval: float, ack_window: int) -> int:
    """The watermark for a connection that delivered `delivered` bytes in the last
    `interval` seconds, whose peer asked to be acknowledged every `ack_window` bytes
    (0: never). At least 1, which is the kernel's default: wake on any byte."""
    if interval <= 0 or delivered <= 0:
        return 1
    cap = MAX_WATERMARK if ack_window <= 0 else min(MAX_WATERMARK, ack_window // 4)
    return max(1, min(int(delivered * BATCH_SECONDS / interval), cap))


class ReadBatching:
    """Keeps one publishing connection's `SO_RCVLOWAT` at its `low_watermark`."""

    def __init__(self, sock: SocketOptions | None) -> None:
        self._sock = sock if _SUPPORTED else None
        #: The value last set (1: the kernel's default).
        self.watermark = 1
        self._since: tuple[int, float] | None = None

    def tune(self, received: int, now: float, ack_window: int) -> None:
        """`received`: bytes the connection has delivered so far; `now`: a monotonic time."""
        since, self._since = self._since, (received, now)
        if since is not None:
            self._set(low_watermark(received - since[0], now - since[1], ack_window))

    def reset(self) -> None:
        """Back to waking on every byte (the publish ended; commands may follow)."""
        self._since = None
        self._set(1)

    def _set(self, value: int) -> None:
        sock = self._sock
        if sock is None or value == self.watermark:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, value)
        except OSError as exc:
            # A closing socket: nothing left to batch. Stop trying for this connection.
            logger.debug("SO_RCVLOWAT not set: %s", exc)
            self._sock = None
            return
        self.watermark = value
