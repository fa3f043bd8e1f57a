"""The delivery server's surface the engine wiring uses."""

from __future__ import annotations

import media_plane.servers.hls as server


def test_public_surface_is_explicit() -> None:
    assert sorted(server.__all__) == [
        "DeliveryCallback",
        "HlsContent",
        "HlsHttpServer",
        "HlsHttpStats",
        "PlayAuthorization",
        "PlayAuthorizer",
    ]
    assert all(hasattr(server, name) for name in server.__all__)
