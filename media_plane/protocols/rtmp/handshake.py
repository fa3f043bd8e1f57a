"""The RTMP handshake, server side, simple form. Pure.

C0 (version) and C1 (1536 bytes) come in; S0, S1 and S2 go out (S2 echoes C1, which
every encoder accepts); then C2 comes in and is not checked, because clients that try
the digest ("complex") handshake send a C2 that echoes nothing. Only version 3 exists.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from enum import Enum

from media_plane.protocols.rtmp.errors import RtmpProtocolError

__all__ = ["HANDSHAKE_SIZE", "RTMP_VERSION", "HandshakeState", "ServerHandshake"]

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536


class HandshakeState(Enum):
    WAIT_C0C1 = 0
    WAIT_C2 = 1
    DONE = 2


class ServerHandshake:
    """Feed bytes in; get bytes to send back, and the bytes that follow C2."""

    def __init__(
        self,
        *,
        uptime_ms: Callable[[], int] = lambda: 0,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.state = HandshakeState.WAIT_C0C1
        self._buffer = bytearray()
        self._uptime_ms = uptime_ms
        self._random = random

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Returns (bytes to send, bytes after C2 that belong to the chunk stream)."""
        if self.state is HandshakeState.DONE:
            return b"", data
        buffer = self._buffer
        buffer += data
        reply = b""
        if self.state is HandshakeState.WAIT_C0C1:
            if buffer and buffer[0] != RTMP_VERSION:
                raise RtmpProtocolError(f"unsupported RTMP version {buffer[0]}")
            if len(buffer) < 1 + HANDSHAKE_SIZE:
                return b"", b""
            c1 = bytes(buffer[1 : 1 + HANDSHAKE_SIZE])
            del buffer[: 1 + HANDSHAKE_SIZE]
            # S1: our time, four zero bytes (a simple handshake), then random filler.
            s1 = struct.pack(">II", self._uptime_ms() & 0xFFFFFFFF, 0)
            s1 += self._random(HANDSHAKE_SIZE - 8)
            reply = bytes([RTMP_VERSION]) + s1 + c1
            self.state = HandshakeState.WAIT_C2
        if len(buffer) < HANDSHAKE_SIZE:
            return reply, b""
        rest = bytes(buffer[HANDSHAKE_SIZE:])
        buffer.clear()
        self.state = HandshakeState.DONE
        return reply, rest
