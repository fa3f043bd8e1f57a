"""VP8 frame headers (RFC 6386 9.1): keyframe flag and picture size. Pure."""

from __future__ import annotations

__all__ = ["vp8_dimensions", "vp8_is_keyframe"]

_START_CODE = b"\x9d\x01\x2a"


def vp8_is_keyframe(frame: bytes) -> bool:
    # Bit 0 of the frame tag is 0 for a key frame.
    return len(frame) >= 10 and frame[0] & 0x01 == 0 and frame[3:6] == _START_CODE


def vp8_dimensions(frame: bytes) -> tuple[int, int]:
    """(width, height) of a key frame; (0, 0) for anything else."""
    if not vp8_is_keyframe(frame):
        return 0, 0
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height
