"""The WebRTC packages' surface the engine wiring and the signaling server use."""

from __future__ import annotations

import media_plane.protocols.webrtc as webrtc
import media_plane.servers.webrtc as signaling


def test_public_surface_is_explicit() -> None:
    assert sorted(webrtc.__all__) == [
        "Answer",
        "HlsTranscoders",
        "IceRestartError",
        "OfferError",
        "PlayRefusedError",
        "PublishRefusedError",
        "SessionChangedError",
        "SessionEnd",
        "SessionNotFoundError",
        "SessionStart",
        "WebRtcError",
        "WebRtcOptions",
        "WebRtcSessions",
        "WebRtcStats",
        "etag",
    ]
    assert all(hasattr(webrtc, name) for name in webrtc.__all__)
    assert sorted(signaling.__all__) == ["WebRtcHttpServer", "WebRtcHttpStats"]
    assert all(hasattr(signaling, name) for name in signaling.__all__)
