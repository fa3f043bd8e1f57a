"""WHIP/WHEP signaling over HTTP/1.1 for the edge (the media flows over WebRTC)."""

from media_plane.servers.webrtc.server import WebRtcHttpServer, WebRtcHttpStats

__all__ = ["WebRtcHttpServer", "WebRtcHttpStats"]
