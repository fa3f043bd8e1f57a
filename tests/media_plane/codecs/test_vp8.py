"""VP8: keyframes and picture sizes from the frame header."""

from __future__ import annotations

from media_plane.codecs.vp8 import vp8_dimensions, vp8_is_keyframe


def test_vp8_keyframe_header() -> None:
    key = bytes((0x50, 0x42, 0x00)) + b"\x9d\x01\x2a" + (640).to_bytes(2, "little")
    key += (480).to_bytes(2, "little") + b"\x00" * 8
    assert vp8_is_keyframe(key) and vp8_dimensions(key) == (640, 480)
    interframe = bytes((0x51,)) + key[1:]
    assert not vp8_is_keyframe(interframe) and vp8_dimensions(interframe) == (0, 0)
