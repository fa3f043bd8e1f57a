"""What a WHIP or WHEP offer asks for, checked before any peer connection exists. Pure.

aiortc's SDP parser accepts anything (garbage parses as a description with no media), so
every reason to refuse an offer with a 400 is decided here, with a message that names
what is wrong. Codec choice for each direction lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc.sdp import SessionDescription

from media_plane.protocols.webrtc.errors import OfferError

__all__ = ["MAX_OFFER_BYTES", "OfferError", "OfferSummary", "read_offer"]

#: Browser offers are 3-8 KiB; anything far larger is not an offer.
MAX_OFFER_BYTES = 64 * 1024

#: Codecs the edge takes from publishers (video, in preference order) and audio.
PUBLISH_VIDEO = ("H264", "VP8")
PUBLISH_AUDIO = ("opus",)


@dataclass(frozen=True, slots=True)
class OfferSummary:
    #: Codec names offered per kind, as written in the offer (rtx, red, fec left out).
    video_codecs: tuple[str, ...]
    audio_codecs: tuple[str, ...]
    #: H.264 offered with packetization-mode=1 (the only mode aiortc packetizes).
    h264_mode1: bool
    #: The ICE usernames of the offer's media sections.
    ice_ufrags: frozenset[str] = frozenset()

    @property
    def has_video(self) -> bool:
        return bool(self.video_codecs)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)

    def offers(self, codec: str) -> bool:
        wanted = codec.lower()
        if wanted == "h264" and not self.h264_mode1:
            return False
        return any(c.lower() == wanted for c in self.video_codecs + self.audio_codecs)


_NOT_MEDIA = frozenset({"rtx", "red", "ulpfec", "flexfec-03", "cn", "telephone-event"})


def _reason(exc: Exception) -> str:
    detail = str(exc)
    if isinstance(exc, AssertionError) or not detail:
        return "a line is missing or misformed (expected lines like m=video 9 UDP/TLS/RTP/SAVPF 96)"
    return detail


def read_offer(body: bytes, *, publish: bool) -> tuple[str, OfferSummary]:
    """Decode and check an offer; returns its text and summary, or raises `OfferError`."""
    if not body:
        raise OfferError("empty body: expected an SDP offer (application/sdp)")
    if len(body) > MAX_OFFER_BYTES:
        raise OfferError("SDP offer too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OfferError("SDP offer is not UTF-8") from exc
    if not text.startswith("v=0"):
        raise OfferError("not an SDP offer: it must start with v=0")
    try:
        description = SessionDescription.parse(text)
    except Exception as exc:
        # aiortc's parser documents no error type: on malformed lines it fails with
        # AssertionError, StopIteration, AttributeError, TypeError as well as ValueError.
        # Every one of them means the client sent a bad offer, so each is a 400 here.
        raise OfferError(f"malformed SDP offer: {_reason(exc)}") from exc
    video: list[str] = []
    audio: list[str] = []
    h264_mode1 = False
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError(f"{media.kind} section lacks ice-ufrag/ice-pwd")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(f"{media.kind} section lacks a DTLS fingerprint")
        if publish and media.direction not in ("sendonly", "sendrecv"):
            raise OfferError(f"a WHIP offer must send its {media.kind} (direction sendonly)")
        if not publish and media.direction not in ("recvonly", "sendrecv"):
            raise OfferError(f"a WHEP offer must receive its {media.kind} (direction recvonly)")
        names = video if media.kind == "video" else audio
        for codec in media.rtp.codecs:
            if codec.name.lower() in _NOT_MEDIA:
                continue
            if codec.name not in names:
                names.append(codec.name)
            if (
                codec.name.upper() == "H264"
                and str(codec.parameters.get("packetization-mode", "0")) == "1"
            ):
                h264_mode1 = True
    if not video and not audio:
        raise OfferError("SDP offer has no audio or video section")
    ufrags = frozenset(
        m.ice.usernameFragment for m in description.media if m.ice and m.ice.usernameFragment
    )
    summary = OfferSummary(tuple(video), tuple(audio), h264_mode1, ufrags)
    if publish:
        usable = [c for c in PUBLISH_VIDEO if summary.offers(c)]
        usable += [c for c in PUBLISH_AUDIO if summary.offers(c)]
        if not usable:
            raise OfferError(
                "no usable codec: publish H.264 (packetization-mode=1) or VP8 video, Opus audio"
            )
    return text, summary
