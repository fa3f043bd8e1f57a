"""The RTMP chunk stream: a pure incremental reader (bytes in, messages out) and a writer.

The reader is a small state machine. Between chunks it parses one chunk header; the
payload bytes of that chunk are then sliced straight out of whatever `feed` got, so each
payload byte is copied once into its message (twice when the message spans chunks and
has to be joined), and only a split header (at most 17 bytes) is ever held back.

Set Chunk Size and Abort take effect as soon as they are read, because the chunks that
follow in the same buffer already depend on them.

Extended timestamps follow what FFmpeg and OBS put on the wire: a header whose 24-bit
timestamp field is 0xFFFFFF carries a 32-bit value after it, and so does every type 3
chunk of that chunk stream until a header says otherwise. A type 3 chunk that starts a
new message takes its value as the new delta. On a type 3 chunk that continues a
message some encoders leave the value out; there the four bytes are only taken as a
timestamp when they repeat the message's own value.

Memory is bounded: a message may not declare more than `max_message_size` bytes, at
most `max_partial` messages may be half-assembled at once, they may hold at most
`max_buffered` bytes together (a part smaller than `PART_COST` is counted as that
much: a peer with a chunk size of one would otherwise hold ~40 bytes of Python object
per byte counted), and at most `max_chunk_streams` chunk stream ids are
remembered. `set_limits` changes the first and the third as the peer earns trust.

Work is bounded too: one `feed` parses at most `max_chunks` chunk headers. A peer can
make every byte a chunk (zero-length messages, or a chunk size of one), so bytes alone
do not bound the work; what is left over is held (not copied) and parsed by the next
`feed`, so the caller can let other work run in between (`held` says there is more).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media_plane.protocols.rtmp.errors import RtmpProtocolError

__all__ = [
    "ABORT",
    "ACKNOWLEDGEMENT",
    "AGGREGATE",
    "AUDIO",
    "COMMAND_AMF0",
    "COMMAND_AMF3",
    "DATA_AMF0",
    "DATA_AMF3",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "PART_COST",
    "SET_CHUNK_SIZE",
    "SET_PEER_BANDWIDTH",
    "SHARED_OBJECT_AMF0",
    "SHARED_OBJECT_AMF3",
    "USER_CONTROL",
    "VIDEO",
    "WINDOW_ACK_SIZE",
    "ChunkReader",
    "RtmpMessage",
    "encode_message",
]

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF
EXTENDED_TIMESTAMP = 0xFFFFFF
MAX_CSID = 65599

# Protocol control messages.
SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
# Content messages.
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

#: What one stored part of a message costs at least: a bytes object and its list slot.
PART_COST = 64

_MESSAGE_HEADER_SIZE = (11, 7, 3, 0)
_U32 = struct.Struct(">I")
_MASK32 = 0xFFFFFFFF


@dataclass(slots=True)
class RtmpMessage:
    type_id: int
    stream_id: int
    #: Milliseconds, wrapping at 2^32 as the protocol does.
    timestamp: int
    payload: bytes
    #: The chunk stream it came on (or goes out on).
    csid: int = 3


class _ChunkStream:
    """What one chunk stream id remembers between chunks."""

    __slots__ = (
        "charged",
        "csid",
        "delta",
        "extended",
        "length",
        "partial",
        "parts",
        "received",
        "stream_id",
        "timestamp",
        "type_id",
    )

    def __init__(self, csid: int) -> None:
        self.csid = csid
        #: The last timestamp field (the extended value when `extended`): the absolute
        #: timestamp after a type 0 header, the delta after types 1 and 2.
        self.delta = 0
        self.extended = False
        self.timestamp = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.parts: list[bytes] = []
        #: Payload bytes of the current message received so far (0 between messages).
        self.received = 0
        #: What the parts count against `max_buffered` (`received`, small parts rounded up).
        self.charged = 0
        #: Whether the current message spans chunks (counts against `max_partial`).
        self.partial = False


class ChunkReader:
    def __init__(
        self,
        *,
        max_message_size: int = 8 * 1024 * 1024,
        max_partial: int = 8,
        max_buffered: int = 16 * 1024 * 1024,
        max_chunk_streams: int = 64,
        max_chunks: int = 1 << 62,
    ) -> None:
        if min(max_message_size, max_partial, max_buffered, max_chunk_streams, max_chunks) < 1:
            raise ValueError("chunk reader limits must be positive")
        #: The peer's chunk size, as its last Set Chunk Size said.
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._max_message = max_message_size
        self._max_partial = max_partial
        self._max_buffered = max_buffered
        self._max_streams = max_chunk_streams
        self._max_chunks = max_chunks
        self._held = b""
        self._held_at = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = b""
        self._current: _ChunkStream | None = None
        self._chunk_left = 0
        self._partial = 0
        self._assembling = 0

    @property
    def buffered(self) -> int:
        """Bytes held between calls: half-assembled messages, a split header and bytes
        not parsed yet."""
        held = len(self._held) - self._held_at if self._held else 0
        return self._assembling + len(self._pending) + held

    @property
    def held(self) -> bool:
        """Whether bytes fed earlier wait to be parsed (`feed(b"")` goes on with them)."""
        return bool(self._held)

    def set_limits(self, *, max_message_size: int, max_buffered: int) -> None:
        """New bounds for what follows; messages already declared keep their length."""
        if min(max_message_size, max_buffered) < 1:
            raise ValueError("chunk reader limits must be positive")
        self._max_message = max_message_size
        self._max_buffered = max_buffered

    def feed(self, data: bytes) -> list[RtmpMessage]:
        """Consumes `data` (after anything held); returns the messages it completed, in
        order. Stops after `max_chunks` chunk headers and holds the rest."""
        pos = 0
        if self._held:
            held, pos = self._held, self._held_at
            self._held = b""
            if data:
                data, pos = held[pos:] + data, 0
            else:
                data = held
        elif self._pending:
            data = self._pending + data
            self._pending = b""
        out: list[RtmpMessage] = []
        end = len(data)
        chunks = self._max_chunks
        while True:
            stream = self._current
            if stream is not None:
                left = self._chunk_left
                if left:
                    if pos >= end:
                        break
                    take = left if left <= end - pos else end - pos
                    stream.parts.append(data[pos : pos + take])
                    pos += take
                    stream.received += take
                    charge = take if take >= PART_COST else PART_COST
                    stream.charged += charge
                    self._assembling += charge
                    if take < left:
                        self._chunk_left = left - take
                        if self._assembling > self._max_buffered:
                            raise RtmpProtocolError("too much unassembled data")
                        break
                    self._chunk_left = 0
                self._current = None
                if stream.received >= stream.length:
                    out.append(self._complete(stream))
                elif self._assembling > self._max_buffered:
                    raise RtmpProtocolError("too much unassembled data")
            if pos >= end:
                break
            if not chunks:
                self._held = data
                self._held_at = pos
                break
            used = self._header(data, pos, end)
            if not used:
                self._pending = data[pos:]
                break
            pos += used
            chunks -= 1
        return out

    def _header(self, buf: bytes, pos: int, end: int) -> int:
        """Parses the chunk header at `pos` and readies its payload; returns the header's
        size, or 0 when it is not all here yet (nothing is changed then)."""
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        at = pos + 1
        if csid == 0:
            if at + 1 > end:
                return 0
            csid = buf[at] + 64
            at += 1
        elif csid == 1:
            if at + 2 > end:
                return 0
            csid = buf[at] + (buf[at + 1] << 8) + 64
            at += 2
        stream = self._streams.get(csid)
        if fmt == 3:
            if stream is None:
                raise RtmpProtocolError(f"chunk stream {csid} starts without a full header")
            if stream.received:
                if stream.extended:
                    if at + 4 > end:
                        return 0
                    if _U32.unpack_from(buf, at)[0] == stream.delta:
                        at += 4
                left = stream.length - stream.received
            else:
                if stream.extended:
                    if at + 4 > end:
                        return 0
                    stream.delta = _U32.unpack_from(buf, at)[0]
                    at += 4
                stream.timestamp = (stream.timestamp + stream.delta) & _MASK32
                left = self._begin(stream)
        else:
            size = _MESSAGE_HEADER_SIZE[fmt]
            if at + size > end:
                return 0
            ts_field = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2]
            extended = ts_field == EXTENDED_TIMESTAMP
            if extended:
                if at + size + 4 > end:
                    return 0
                ts_field = _U32.unpack_from(buf, at + size)[0]
            if stream is None:
                if fmt != 0:
                    raise RtmpProtocolError(f"chunk stream {csid} starts without a full header")
                if len(self._streams) >= self._max_streams:
                    raise RtmpProtocolError("too many chunk streams")
                stream = self._streams[csid] = _ChunkStream(csid)
            elif stream.received:
                raise RtmpProtocolError(f"new message header on chunk stream {csid} mid-message")
            if fmt <= 1:
                length = (buf[at + 3] << 16) | (buf[at + 4] << 8) | buf[at + 5]
                if length > self._max_message:
                    raise RtmpProtocolError(f"message of {length} bytes exceeds the limit")
                stream.length = length
                stream.type_id = buf[at + 6]
            if fmt == 0:
                stream.stream_id = int.from_bytes(buf[at + 7 : at + 11], "little")
                stream.timestamp = ts_field
            else:
                stream.timestamp = (stream.timestamp + ts_field) & _MASK32
            stream.delta = ts_field
            stream.extended = extended
            at += size + 4 if extended else size
            left = self._begin(stream)
        self._current = stream
        self._chunk_left = left if left <= self.chunk_size else self.chunk_size
        return at - pos

    def _begin(self, stream: _ChunkStream) -> int:
        """Starts a message on `stream`; returns its length."""
        length = stream.length
        stream.partial = length > self.chunk_size
        if stream.partial:
            if self._partial >= self._max_partial:
                raise RtmpProtocolError("too many interleaved partial messages")
            self._partial += 1
        return length

    def _complete(self, stream: _ChunkStream) -> RtmpMessage:
        parts = stream.parts
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        self._discard(stream)
        message = RtmpMessage(
            stream.type_id, stream.stream_id, stream.timestamp, payload, stream.csid
        )
        if message.type_id <= ABORT:
            self._apply_control(message)
        return message

    def _discard(self, stream: _ChunkStream) -> None:
        self._assembling -= stream.charged
        stream.parts = []
        stream.received = 0
        stream.charged = 0
        if stream.partial:
            stream.partial = False
            self._partial -= 1

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
            stream = self._streams.get(_U32.unpack_from(message.payload)[0])
            if stream is not None and stream.received:
                self._discard(stream)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 64 + 256:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1]) + (csid - 64).to_bytes(2, "little")


def encode_message(message: RtmpMessage, chunk_size: int) -> bytes:
    """Serializes a message as one type 0 chunk followed by type 3 continuations."""
    csid = message.csid
    if not 2 <= csid <= MAX_CSID:
        raise ValueError(f"chunk stream id {csid} out of range")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size {chunk_size} out of range")
    payload = message.payload
    if len(payload) > 0xFFFFFF:
        raise ValueError("RTMP messages are at most 16 MiB")
    timestamp = message.timestamp & _MASK32
    extended = timestamp >= EXTENDED_TIMESTAMP
    ext = _U32.pack(timestamp) if extended else b""
    parts = [
        _basic_header(0, csid),
        (EXTENDED_TIMESTAMP if extended else timestamp).to_bytes(3, "big"),
        len(payload).to_bytes(3, "big"),
        bytes([message.type_id]),
        message.stream_id.to_bytes(4, "little"),
        ext,
        payload[:chunk_size],
    ]
    continuation = _basic_header(3, csid) + ext
    for offset in range(chunk_size, len(payload), chunk_size):
        parts.append(continuation)
        parts.append(payload[offset : offset + chunk_size])
    return b"".join(parts)
