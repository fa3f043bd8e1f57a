"""The media plane's error base: every error a media-plane module raises derives from it.

MediaPlaneError
├── CodecError           (codecs) a decoder configuration or payload that cannot be read
├── AlreadyLiveError     (media.live_stream) the key is already publishing here
├── RtmpProtocolError    (protocols.rtmp) the peer broke the RTMP, AMF0 or FLV rules
├── OfferError           (protocols.webrtc) an SDP offer or fragment cannot be answered
├── MuxError             (protocols.mpegts) a packet the MPEG-TS muxer cannot write
├── BadRequestError      (servers.http) an HTTP/1.1 request that cannot be served
└── WebRtcError          (servers.webrtc) why a WHIP or WHEP request was refused
"""

from __future__ import annotations

__all__ = ["MediaPlaneError"]


class MediaPlaneError(Exception):
    """Base of every media-plane error."""
