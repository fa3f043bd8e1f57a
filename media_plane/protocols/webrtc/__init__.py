"""WebRTC wire formats: SDP offers and trickle fragments, RTP packets, and WHIP access
units converted to the engine's canonical packets (`ingest`). Pure; the sessions and the
signaling server are `servers.webrtc`.
"""

from media_plane.protocols.webrtc.errors import OfferError

__all__ = ["OfferError"]
