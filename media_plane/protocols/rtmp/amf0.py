"""AMF0 encoding and decoding. Pure.

Values map to Python as: number <-> float (ints encode as numbers), boolean <-> bool,
string and long string <-> str (the encoder picks by length), object <-> dict,
ECMA array <-> EcmaArray (a dict), strict array <-> list, date <-> AmfDate,
null <-> None, undefined <-> UNDEFINED. Object end only terminates objects and ECMA
arrays; anywhere else it is malformed, as are references, typed objects and AMF3 values.

Decoding never raises anything but AmfDecodeError: nesting depth and item counts are
capped so that hostile input cannot exhaust the stack or memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TypeAlias

from media_plane.protocols.rtmp.errors import AmfDecodeError

__all__ = [
    "UNDEFINED",
    "AmfDate",
    "AmfValue",
    "EcmaArray",
    "Marker",
    "Undefined",
    "decode_all",
    "encode",
    "iter_values",
]


class Marker(IntEnum):
    NUMBER = 0x00
    BOOLEAN = 0x01
    STRING = 0x02
    OBJECT = 0x03
    MOVIECLIP = 0x04
    NULL = 0x05
    UNDEFINED = 0x06
    REFERENCE = 0x07
    ECMA_ARRAY = 0x08
    OBJECT_END = 0x09
    STRICT_ARRAY = 0x0A
    DATE = 0x0B
    LONG_STRING = 0x0C


class Undefined(Enum):
    """AMF0 `undefined`, kept apart from `null` so that values round-trip."""

    UNDEFINED = "undefined"


UNDEFINED = Undefined.UNDEFINED


@dataclass(frozen=True, slots=True)
class AmfDate:
    #: Milliseconds since the epoch (UTC).
    milliseconds: float
    #: Reserved by the spec; kept as sent.
    timezone: int = 0


AmfValue: TypeAlias = (
    "float | bool | str | Undefined | AmfDate | dict[str, AmfValue] | list[AmfValue] | None"
)


class EcmaArray(dict[str, AmfValue]):
    """An AMF0 ECMA array (associative array); behaves as a dict."""


MAX_DEPTH = 32
MAX_ITEMS = 65_536
_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE_TZ = struct.Struct(">h")


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def need(self, n: int) -> int:
        """Advances over `n` bytes; returns where they start."""
        start = self.pos
        if start + n > self.end:
            raise AmfDecodeError("truncated AMF0 data")
        self.pos = start + n
        return start

    def u8(self) -> int:
        return self.data[self.need(1)]

    def u16(self) -> int:
        return int(_U16.unpack_from(self.data, self.need(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self.data, self.need(4))[0])

    def double(self) -> float:
        return float(_DOUBLE.unpack_from(self.data, self.need(8))[0])

    def text(self, length: int) -> str:
        start = self.need(length)
        try:
            return self.data[start : start + length].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfDecodeError("invalid UTF-8 in AMF0 string") from exc


def decode_all(data: bytes) -> list[AmfValue]:
    """Every value in `data`, in order."""
    return list(iter_values(data))


def iter_values(data: bytes) -> Iterator[AmfValue]:
    reader = _Reader(data)
    while reader.pos < reader.end:
        yield _value(reader, 0)


def _value(reader: _Reader, depth: int) -> AmfValue:
    marker = reader.u8()
    if marker == Marker.NUMBER:
        return reader.double()
    if marker == Marker.STRING:
        return reader.text(reader.u16())
    if marker == Marker.BOOLEAN:
        return reader.u8() != 0
    if marker == Marker.NULL:
        return None
    if marker == Marker.UNDEFINED:
        return UNDEFINED
    if marker in (Marker.OBJECT, Marker.ECMA_ARRAY, Marker.STRICT_ARRAY):
        if depth >= MAX_DEPTH:
            raise AmfDecodeError("AMF0 nesting too deep")
        if marker == Marker.OBJECT:
            return _properties(reader, depth, {})
        if marker == Marker.ECMA_ARRAY:
            reader.u32()  # an approximate count; the end marker is authoritative
            return _properties(reader, depth, EcmaArray())
        count = reader.u32()
        # Every item takes at least one byte, so a count beyond the data is a lie.
        if count > MAX_ITEMS or count > reader.end - reader.pos:
            raise AmfDecodeError(f"AMF0 strict array of {count} items")
        return [_value(reader, depth + 1) for _ in range(count)]
    if marker == Marker.LONG_STRING:
        return reader.text(reader.u32())
    if marker == Marker.DATE:
        millis = reader.double()
        timezone = int(_DATE_TZ.unpack_from(reader.data, reader.need(2))[0])
        return AmfDate(millis, timezone)
    if marker == Marker.OBJECT_END:
        raise AmfDecodeError("AMF0 object end outside an object")
    raise AmfDecodeError(f"unsupported AMF0 marker 0x{marker:02x}")


def _properties(reader: _Reader, depth: int, result: dict[str, AmfValue]) -> dict[str, AmfValue]:
    for _ in range(MAX_ITEMS):
        key = reader.text(reader.u16())
        if not key:
            if reader.u8() != Marker.OBJECT_END:
                raise AmfDecodeError("AMF0 object without an end marker")
            return result
        result[key] = _value(reader, depth + 1)
    raise AmfDecodeError("AMF0 object has too many properties")


def encode(*values: AmfValue) -> bytes:
    out = bytearray()
    for value in values:
        _encode(out, value, 0)
    return bytes(out)


def _encode_key(out: bytearray, key: str) -> None:
    raw = key.encode("utf-8")
    if not raw or len(raw) > 0xFFFF:
        raise ValueError("AMF0 property names are 1 to 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _encode(out: bytearray, value: AmfValue, depth: int) -> None:
    if value is None:
        out.append(Marker.NULL)
    elif value is UNDEFINED:
        out.append(Marker.UNDEFINED)
    elif isinstance(value, bool):
        out += bytes([Marker.BOOLEAN, 1 if value else 0])
    elif isinstance(value, int | float):
        out.append(Marker.NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(Marker.STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(Marker.LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, dict | list) and depth >= MAX_DEPTH:
        raise ValueError("AMF0 value nested too deep")
    elif isinstance(value, dict):
        if isinstance(value, EcmaArray):
            out.append(Marker.ECMA_ARRAY)
            out += _U32.pack(len(value))
        else:
            out.append(Marker.OBJECT)
        for key, item in value.items():
            _encode_key(out, key)
            _encode(out, item, depth + 1)
        out += b"\x00\x00"
        out.append(Marker.OBJECT_END)
    elif isinstance(value, list):
        out.append(Marker.STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode(out, item, depth + 1)
    elif isinstance(value, AmfDate):
        out.append(Marker.DATE)
        out += _DOUBLE.pack(value.milliseconds)
        out += _DATE_TZ.pack(value.timezone)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
