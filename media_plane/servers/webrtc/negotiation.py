"""Pure pieces of answering an offer: codec preferences, entity tags, why a publish ended."""

from __future__ import annotations

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from media_plane.media import Codec

__all__ = ["capabilities", "end_reason", "etag"]

#: A publisher whose connection closes this long after its last frame was lost, not
#: stopped: aioice closes (rather than fails) a connection whose consent checks failed.
_SILENCE_BEFORE_LOST_S = 3.0


def end_reason(reason: str, last_frame_at: float | None, now: float) -> str:
    """The stream's end reason for a publish session that ended for `reason`."""
    if reason == "node_stopped":
        return "node_stopped"
    if reason == "client_ended":
        return "publisher_stopped"
    if reason == "peer_closed" and (
        last_frame_at is not None and now - last_frame_at < _SILENCE_BEFORE_LOST_S
    ):
        return "publisher_stopped"
    return "publisher_lost"


def etag(session_id: str) -> str:
    """The session's entity tag (quoted), answered on POST and checked on PATCH."""
    return f'"{session_id}"'


def capabilities(kind: str, codec: Codec) -> list[RTCRtpCodecCapability]:
    wanted = {Codec.H264: "h264", Codec.VP8: "vp8", Codec.OPUS: "opus"}.get(codec)
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in codecs if c.name.lower() == wanted]
    rtx = [c for c in codecs if c.name.lower() == "rtx"]
    return chosen + rtx
