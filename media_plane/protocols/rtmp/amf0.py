"""AMF0 encoding and decoding (the subset RTMP commands use). Pure.

Decoded values: float (number), bool, str, None (null and undefined), dict (object and
ECMA array), list (strict array), and AmfDate.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from media_plane.protocols.rtmp.errors import AmfDecodeError

NUMBER, BOOLEAN, STRING, OBJECT = 0x00, 0x01, 0x02, 0x03
NULL, UNDEFINED, REFERENCE, ECMA_ARRAY, OBJECT_END = 0x05, 0x06, 0x07, 0x08, 0x09
STRICT_ARRAY, DATE, LONG_STRING = 0x0A, 0x0B, 0x0C

_MAX_DEPTH = 32
_MAX_ITEMS = 65_536
_DOUBLE = struct.Struct(">d")


@dataclass(frozen=True, slots=True)
class AmfDate:
    milliseconds: float
    timezone: int = 0


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise AmfDecodeError("truncated AMF0 data")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def string(self, length: int) -> str:
        try:
            return self.take(length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfDecodeError("invalid UTF-8 in AMF0 string") from exc


def decode_all(data: bytes) -> list[Any]:
    """Every value in `data`, in order."""
    return list(iter_values(data))


def iter_values(data: bytes) -> Iterator[Any]:
    reader = _Reader(data)
    while reader.pos < len(data):
        yield _value(reader, 0)


def _value(reader: _Reader, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise AmfDecodeError("AMF0 nesting too deep")
    marker = reader.u8()
    if marker == NUMBER:
        return _DOUBLE.unpack(reader.take(8))[0]
    if marker == BOOLEAN:
        return reader.u8() != 0
    if marker == STRING:
        return reader.string(reader.u16())
    if marker == LONG_STRING:
        return reader.string(reader.u32())
    if marker in (NULL, UNDEFINED):
        return None
    if marker == OBJECT:
        return _properties(reader, depth)
    if marker == ECMA_ARRAY:
        reader.u32()  # approximate count; the end marker is authoritative
        return _properties(reader, depth)
    if marker == STRICT_ARRAY:
        count = reader.u32()
        if count > _MAX_ITEMS or count > len(reader.data) - reader.pos:
            raise AmfDecodeError("AMF0 strict array too long")
        return [_value(reader, depth + 1) for _ in range(count)]
    if marker == DATE:
        millis = _DOUBLE.unpack(reader.take(8))[0]
        return AmfDate(millis, int.from_bytes(reader.take(2), "big", signed=True))
    raise AmfDecodeError(f"unsupported AMF0 marker 0x{marker:02x}")


def _properties(reader: _Reader, depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for _ in range(_MAX_ITEMS):
        key = reader.string(reader.u16())
        if not key:
            if reader.u8() != OBJECT_END:
                raise AmfDecodeError("AMF0 object without an end marker")
            return result
        result[key] = _value(reader, depth + 1)
    raise AmfDecodeError("AMF0 object has too many properties")


def encode(*values: Any) -> bytes:
    out = bytearray()
    for value in values:
        _encode(out, value)
    return bytes(out)


def _encode(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(NULL)
    elif isinstance(value, bool):
        out += bytes([BOOLEAN, 1 if value else 0])
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += len(raw).to_bytes(2, "big")
        else:
            out.append(LONG_STRING)
            out += len(raw).to_bytes(4, "big")
        out += raw
    elif isinstance(value, dict):
        out.append(OBJECT)
        for key, item in value.items():
            raw_key = str(key).encode("utf-8")
            out += len(raw_key).to_bytes(2, "big") + raw_key
            _encode(out, item)
        out += b"\x00\x00" + bytes([OBJECT_END])
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += len(value).to_bytes(4, "big")
        for item in value:
            _encode(out, item)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += _DOUBLE.pack(value.milliseconds) + value.timezone.to_bytes(2, "big", signed=True)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
