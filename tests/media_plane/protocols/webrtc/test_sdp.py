"""SDP offers and trickle fragments, checked before any peer connection exists."""

from __future__ import annotations

import random

import pytest

from media_plane.protocols.webrtc.errors import OfferError
from media_plane.protocols.webrtc.offer import read_offer
from media_plane.protocols.webrtc.trickle import parse_fragment

_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na={direction}\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AA"] * 32) + "\r\na=setup:actpass\r\n"
    "a=rtpmap:96 {codec}/90000\r\na=fmtp:96 packetization-mode=1\r\na=rtpmap:97 rtx/90000\r\n"
    "a=fmtp:97 apt=96\r\n"
)


def test_offers_are_checked_before_any_peer_connection() -> None:
    _, summary = read_offer(
        _OFFER.format(direction="sendonly", codec="H264").encode(), publish=True
    )
    assert summary.video_codecs == ("H264",) and summary.offers("h264")
    with pytest.raises(OfferError, match="no usable codec"):
        read_offer(_OFFER.format(direction="sendonly", codec="AV1").encode(), publish=True)
    with pytest.raises(OfferError, match="sendonly"):
        read_offer(_OFFER.format(direction="recvonly", codec="H264").encode(), publish=True)
    with pytest.raises(OfferError, match="recvonly"):
        read_offer(_OFFER.format(direction="sendonly", codec="H264").encode(), publish=False)
    no_ice = _OFFER.replace("a=ice-ufrag:abcd\r\n", "")
    with pytest.raises(OfferError, match="ice-ufrag"):
        read_offer(no_ice.format(direction="sendonly", codec="VP8").encode(), publish=True)
    for body in (b"", b"\xff\xfe", b"hello", b"v=0" + b" " * 70_000):
        with pytest.raises(OfferError):
            read_offer(body, publish=True)


def test_a_malformed_offer_is_refused_with_a_reason_never_a_crash() -> None:
    with pytest.raises(OfferError, match="malformed SDP offer: a line is missing or misformed"):
        read_offer(b"v=0\r\nm=\r\n", publish=True)
    # Seeded single-character edits of a valid offer: aiortc's parser fails on them with
    # half a dozen exception types; each must come out as an OfferError (a 400).
    lines = _OFFER.format(direction="sendonly", codec="H264").split("\r\n")
    rng = random.Random(19)
    refused = 0
    for _ in range(3000):
        edited = list(lines)
        row = rng.randrange(1, len(edited) - 1)
        cut = rng.randrange(len(edited[row]) + 1)
        edited[row] = edited[row][:cut] + rng.choice(["", " ", ":", "=", "x", "/"])
        try:
            read_offer("\r\n".join(edited).encode(), publish=True)
        except OfferError:
            refused += 1
    assert refused > 300  # the edits do break offers; every break was an OfferError


def test_trickle_fragments() -> None:
    body = (
        b"a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\n"
        b"a=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host "
        b"generation 0\r\na=end-of-candidates\r\n"
    )
    fragment = parse_fragment(body)
    assert (fragment.ufrag, fragment.end_of_candidates) == ("EsAw", True)
    assert fragment.candidates == (
        "1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0",
    )
    with pytest.raises(OfferError, match="ice-ufrag"):
        parse_fragment(b"a=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n")
    with pytest.raises(OfferError, match="malformed candidate"):
        parse_fragment(b"a=ice-ufrag:x\r\na=candidate:1 1 udp\r\n")
