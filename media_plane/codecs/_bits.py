"""An MSB-first bit reader for codec headers (SPS, AudioSpecificConfig). Pure."""

from __future__ import annotations

from media_plane.codecs.errors import CodecError


class TruncatedError(CodecError):
    """The header ended before a field it must hold."""


class BitReader:
    __slots__ = ("data", "pos", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.size = len(data) * 8

    def bit(self) -> int:
        pos = self.pos
        if pos >= self.size:
            raise TruncatedError("truncated header")
        self.pos = pos + 1
        return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1

    def bits(self, n: int) -> int:
        end = self.pos + n
        if end > self.size:
            raise TruncatedError("truncated header")
        value = int.from_bytes(self.data[self.pos >> 3 : (end + 7) >> 3], "big")
        value >>= -end & 7
        self.pos = end
        return value & ((1 << n) - 1)

    def ue(self) -> int:
        """An unsigned exp-Golomb code (H.264 9.1)."""
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise CodecError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)
