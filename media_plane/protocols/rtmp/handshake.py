"""The RTMP handshake (simple form): C0 C1 in, S0 S1 S2 out, then C2 in. Pure."""

from __future__ import annotations

import os
import struct
import time
from enum import Enum

from media_plane.protocols.rtmp.errors import RtmpProtocolError

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536


class HandshakeState(Enum):
    WAIT_C0C1 = 0
    WAIT_C2 = 1
    DONE = 2


class ServerHandshake:
    """Feed bytes in; get bytes to send back; leftover bytes after C2 are chunk data."""

    def __init__(self) -> None:
        self.state = HandshakeState.WAIT_C0C1
        self._buffer = bytearray()
        self._s1 = b""

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Returns (bytes to send, bytes that follow the handshake)."""
        self._buffer += data
        out = b""
        if self.state is HandshakeState.WAIT_C0C1:
            if self._buffer and self._buffer[0] != RTMP_VERSION:
                raise RtmpProtocolError(f"unsupported RTMP version {self._buffer[0]}")
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b"", b""
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            uptime = int(time.monotonic() * 1000) & 0xFFFFFFFF
            self._s1 = struct.pack(">II", uptime, 0) + os.urandom(HANDSHAKE_SIZE - 8)
            # S2 echoes C1 (the simple handshake every encoder accepts).
            out = bytes([RTMP_VERSION]) + self._s1 + c1
            self.state = HandshakeState.WAIT_C2
        if self.state is HandshakeState.WAIT_C2:
            if len(self._buffer) < HANDSHAKE_SIZE:
                return out, b""
            del self._buffer[:HANDSHAKE_SIZE]
            self.state = HandshakeState.DONE
            rest = bytes(self._buffer)
            self._buffer.clear()
            return out, rest
        return out, b""

    @property
    def done(self) -> bool:
        return self.state is HandshakeState.DONE
