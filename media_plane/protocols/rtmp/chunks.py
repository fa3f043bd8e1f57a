"""The RTMP chunk stream: a pure incremental reader (bytes in, messages out) and a writer.

The reader applies Set Chunk Size and Abort as soon as it reads them, because the chunks
that follow in the same buffer already depend on them. Memory is bounded: a message may
not exceed `max_message_size`, and only `max_partial` messages may be half-assembled at
once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media_plane.protocols.rtmp.errors import RtmpProtocolError

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF
EXTENDED_TIMESTAMP = 0xFFFFFF

# Protocol control message types.
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
# Content message types.
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20
AGGREGATE = 22

_MESSAGE_HEADER_SIZE = (11, 7, 3, 0)
_U32 = struct.Struct(">I")


@dataclass(slots=True)
class RtmpMessage:
    type_id: int
    stream_id: int
    #: Milliseconds, wrapping at 2^32 as the protocol does.
    timestamp: int
    payload: bytes
    csid: int = 3


class _ChunkStream:
    __slots__ = (
        "extended",
        "length",
        "parts",
        "received",
        "stream_id",
        "timestamp",
        "ts_field",
        "type_id",
    )

    def __init__(self) -> None:
        self.timestamp = 0
        self.ts_field = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False
        self.parts: list[bytes] = []
        self.received = 0


class ChunkReader:
    def __init__(
        self,
        *,
        max_message_size: int = 16 * 1024 * 1024,
        max_partial: int = 16,
        max_chunk_streams: int = 256,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._max_message = max_message_size
        self._max_partial = max_partial
        self._max_streams = max_chunk_streams
        self._streams: dict[int, _ChunkStream] = {}
        self._partial = 0
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer) + sum(s.received for s in self._streams.values())

    def feed(self, data: bytes) -> list[RtmpMessage]:
        buffer = self._buffer
        buffer += data
        messages: list[RtmpMessage] = []
        pos = 0
        end = len(buffer)
        while True:
            consumed = self._read_chunk(buffer, pos, end, messages)
            if consumed == 0:
                break
            pos += consumed
        if pos:
            del buffer[:pos]
        return messages

    def _read_chunk(self, buf: bytearray, pos: int, end: int, out: list[RtmpMessage]) -> int:
        """Reads one chunk at `pos`; returns its size, or 0 when it is not complete yet."""
        if pos >= end:
            return 0
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        header = 1
        if csid == 0:
            if pos + 2 > end:
                return 0
            csid = buf[pos + 1] + 64
            header = 2
        elif csid == 1:
            if pos + 3 > end:
                return 0
            csid = buf[pos + 1] + (buf[pos + 2] << 8) + 64
            header = 3
        at = pos + header
        size = _MESSAGE_HEADER_SIZE[fmt]
        if at + size > end:
            return 0
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise RtmpProtocolError(f"chunk stream {csid} starts without a full header")
            if len(self._streams) >= self._max_streams:
                raise RtmpProtocolError("too many chunk streams")
            stream = _ChunkStream()
        continuing = stream.received > 0
        if fmt != 3 and continuing:
            raise RtmpProtocolError(f"new message header on chunk stream {csid} mid-message")
        ts_field = stream.ts_field
        length, type_id, msg_stream = stream.length, stream.type_id, stream.stream_id
        if fmt <= 2:
            ts_field = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2]
        if fmt <= 1:
            length = (buf[at + 3] << 16) | (buf[at + 4] << 8) | buf[at + 5]
            type_id = buf[at + 6]
        if fmt == 0:
            msg_stream = int.from_bytes(buf[at + 7 : at + 11], "little")
        at += size
        extended = stream.extended if fmt == 3 else ts_field == EXTENDED_TIMESTAMP
        if extended:
            if at + 4 > end:
                return 0
            extended_value = _U32.unpack_from(buf, at)[0]
            at += 4
            if fmt != 3:
                ts_field = extended_value
        if length > self._max_message:
            raise RtmpProtocolError(f"message of {length} bytes exceeds the limit")
        remaining = length - stream.received if continuing else length
        take = min(self.chunk_size, remaining)
        if at + take > end:
            return 0
        # The whole chunk is here: commit the header state and the payload.
        if csid not in self._streams:
            self._streams[csid] = stream
        if not continuing:
            if fmt == 0:
                stream.timestamp = ts_field
            else:
                stream.timestamp = (stream.timestamp + ts_field) & 0xFFFFFFFF
            stream.ts_field = ts_field
            stream.length, stream.type_id, stream.stream_id = length, type_id, msg_stream
            stream.extended = extended
            if length > take:
                if self._partial >= self._max_partial:
                    raise RtmpProtocolError("too many interleaved partial messages")
                self._partial += 1
        if take:
            stream.parts.append(bytes(buf[at : at + take]))
        stream.received += take
        if stream.received >= stream.length:
            if continuing or stream.length > take:
                self._partial -= 1
            payload = stream.parts[0] if len(stream.parts) == 1 else b"".join(stream.parts)
            stream.parts = []
            stream.received = 0
            message = RtmpMessage(stream.type_id, stream.stream_id, stream.timestamp, payload, csid)
            self._apply_control(message)
            out.append(message)
        return at + take - pos

    def _apply_control(self, message: RtmpMessage) -> None:
        if message.type_id == SET_CHUNK_SIZE:
            if len(message.payload) < 4:
                raise RtmpProtocolError("short Set Chunk Size")
            size = _U32.unpack_from(message.payload)[0]
            if size == 0 or size > MAX_CHUNK_SIZE:
                raise RtmpProtocolError(f"invalid chunk size {size}")
            self.chunk_size = size
        elif message.type_id == ABORT:
            if len(message.payload) < 4:
                raise RtmpProtocolError("short Abort")
            csid = _U32.unpack_from(message.payload)[0]
            stream = self._streams.get(csid)
            if stream is not None and stream.received:
                stream.parts = []
                stream.received = 0
                self._partial -= 1


def encode_message(message: RtmpMessage, chunk_size: int) -> bytes:
    """Serializes a message as one fmt-0 chunk followed by fmt-3 continuations."""
    csid = message.csid
    if not 2 <= csid <= 63:
        raise ValueError("only one-byte chunk stream ids are written")
    payload = message.payload
    timestamp = message.timestamp & 0xFFFFFFFF
    extended = timestamp >= EXTENDED_TIMESTAMP
    ts_field = EXTENDED_TIMESTAMP if extended else timestamp
    ext = _U32.pack(timestamp) if extended else b""
    parts = [
        bytes([csid]),
        ts_field.to_bytes(3, "big"),
        len(payload).to_bytes(3, "big"),
        bytes([message.type_id]),
        message.stream_id.to_bytes(4, "little"),
        ext,
        payload[:chunk_size],
    ]
    continuation = bytes([0xC0 | csid]) + ext
    for offset in range(chunk_size, len(payload), chunk_size):
        parts.append(continuation)
        parts.append(payload[offset : offset + chunk_size])
    return b"".join(parts)
