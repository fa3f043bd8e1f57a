"""The ingest surface the engine wiring uses; changing it should be a visible decision."""

from __future__ import annotations

import media_plane.protocols.rtmp as rtmp


def test_public_surface_is_explicit() -> None:
    assert sorted(rtmp.__all__) == [
        "AmfDecodeError",
        "MediaFormatError",
        "RtmpProtocolError",
        "RtmpServer",
        "SessionOptions",
        "UnsupportedCodecError",
    ]
    assert all(hasattr(rtmp, name) for name in rtmp.__all__)
