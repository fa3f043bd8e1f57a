"""The packaging surface the engine wiring uses; changing it should be a visible decision."""

from __future__ import annotations

import media_plane.protocols.hls as hls


def test_public_surface_is_explicit() -> None:
    assert sorted(hls.__all__) == [
        "HlsOutput",
        "HlsOutputStats",
        "LivePlaylist",
        "MuxedSegment",
        "PackagerStats",
        "PlaylistSegment",
        "SegmentStore",
        "Segmenter",
        "StoreStats",
    ]
    assert all(hasattr(hls, name) for name in hls.__all__)
