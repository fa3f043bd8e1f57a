"""The pure parts of WebRTC support: H.264/VP8 framing, offers, routes, request heads."""

from __future__ import annotations

import pytest

from media_plane.engine.hooks import PlayDenial, PublishDenial
from media_plane.protocols.webrtc.errors import OfferError
from media_plane.protocols.webrtc.h264 import (
    AvccToAnnexB,
    H264FormatError,
    avc_decoder_configuration,
    parse_annexb,
    split_annexb,
)
from media_plane.protocols.webrtc.offer import read_offer
from media_plane.protocols.webrtc.vp8 import vp8_dimensions, vp8_is_keyframe
from media_plane.servers.webrtc._request import BadRequestError, parse_head
from media_plane.servers.webrtc.routes import (
    Action,
    play_denial_status,
    publish_denial_status,
    route,
)

SPS = bytes.fromhex("6742c01fd9014" + "1fa10000003001000000303c8f18324")
PPS = bytes.fromhex("68cb8cb2")
IDR = b"\x65\x88\x84\x00\x33\xff"
SLICE = b"\x41\x9a\x21\x6c"


def test_annexb_access_unit_becomes_avcc_with_parameter_sets_out_of_band() -> None:
    data = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS
    data += b"\x00\x00\x00\x01" + IDR
    unit = parse_annexb(data)
    assert unit.keyframe and unit.sps == SPS and unit.pps == PPS
    assert unit.avcc == len(IDR).to_bytes(4, "big") + IDR
    assert not parse_annexb(b"\x00\x00\x01" + SLICE).keyframe


def test_avcc_to_annexb_round_trips_and_puts_parameter_sets_before_keyframes() -> None:
    record = avc_decoder_configuration(SPS, PPS)
    converter = AvccToAnnexB(record)
    key = converter.convert(len(IDR).to_bytes(4, "big") + IDR, keyframe=True)
    assert split_annexb(key) == [SPS, PPS, IDR]
    delta = converter.convert(len(SLICE).to_bytes(4, "big") + SLICE, keyframe=False)
    assert split_annexb(delta) == [SLICE]
    assert parse_annexb(key).avcc == len(IDR).to_bytes(4, "big") + IDR
    with pytest.raises(H264FormatError):
        converter.convert(b"\x00\x00\x00\x09" + SLICE, keyframe=False)


def test_vp8_keyframe_header() -> None:
    key = bytes((0x50, 0x42, 0x00)) + b"\x9d\x01\x2a" + (640).to_bytes(2, "little")
    key += (480).to_bytes(2, "little") + b"\x00" * 8
    assert vp8_is_keyframe(key) and vp8_dimensions(key) == (640, 480)
    interframe = bytes((0x51,)) + key[1:]
    assert not vp8_is_keyframe(interframe) and vp8_dimensions(interframe) == (0, 0)


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


def test_routes() -> None:
    assert route("POST", "/whip").action is Action.PUBLISH
    assert route("POST", "/whip/sk_1") == route("POST", "/whip/sk_1")
    assert route("POST", "/whip/sk_1").value == "sk_1"
    assert route("POST", "/whep/pb_1").action is Action.PLAY
    assert route("POST", "/whep").action is Action.NOT_FOUND
    assert route("DELETE", "/whip/session/abc").action is Action.END_PUBLISH
    assert route("DELETE", "/whep/session/abc").action is Action.END_PLAY
    assert route("PATCH", "/whep/session/abc").action is Action.TRICKLE_PLAY
    assert route("PATCH", "/whip/session/abc").action is Action.TRICKLE_PUBLISH
    assert route("GET", "/whep/pb_1").action is Action.METHOD_NOT_ALLOWED
    assert route("OPTIONS", "/whep/pb_1").action is Action.PREFLIGHT
    assert route("POST", "/hls/x").action is Action.NOT_FOUND
    assert route("POST", "/whip/a/b/c").action is Action.NOT_FOUND
    assert publish_denial_status(PublishDenial.INVALID_KEY) == 401
    assert publish_denial_status(PublishDenial.STREAM_DISABLED) == 403
    assert publish_denial_status(PublishDenial.ALREADY_LIVE) == 409
    assert play_denial_status(PlayDenial.UNKNOWN) == 404
    assert play_denial_status(PlayDenial.TOKEN_REQUIRED) == 401


def test_request_heads() -> None:
    head = parse_head(
        b"POST /whip?x=1 HTTP/1.1\r\nHost: edge\r\nContent-Type: application/sdp; charset=x\r\n"
        b"Content-Length: 12\r\nAuthorization: Bearer k"
    )
    assert (head.method, head.path, head.query) == ("POST", "/whip", "x=1")
    assert head.content_type == "application/sdp" and head.content_length == 12
    assert head.keep_alive and head.authorization == "Bearer k"
    for bad, status in (
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked", 411),
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nContent-Length: 99999999", 413),
        (b"POST /whip HTTP/1.1\r\nContent-Length: 1", 400),
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nContent-Length: 1\r\nContent-Length: 1", 400),
        (b"POST whip HTTP/1.1\r\nHost: e", 400),
    ):
        with pytest.raises(BadRequestError) as info:
            parse_head(bad)
        assert info.value.status == status


def test_why_a_publish_ended() -> None:
    from media_plane.protocols.webrtc.negotiation import end_reason as _end_reason

    assert _end_reason("client_ended", 100.0, 100.5) == "publisher_stopped"
    assert _end_reason("node_stopped", None, 1.0) == "node_stopped"
    # A DTLS close right after media: the publisher hung up.
    assert _end_reason("peer_closed", 100.0, 100.5) == "publisher_stopped"
    # Closed after seconds of silence (consent checks failed) or failed: lost.
    assert _end_reason("peer_closed", 100.0, 130.0) == "publisher_lost"
    assert _end_reason("peer_lost", 100.0, 100.5) == "publisher_lost"
    assert _end_reason("connect_timeout", None, 10.0) == "publisher_lost"


def test_a_joining_viewer_gets_the_whole_gop_squeezed_to_end_at_the_newest_frame() -> None:
    import asyncio

    from aiortc.codecs.h264 import H264PayloadDescriptor

    from media_plane.media import Codec, MediaPacket, TrackKind, VideoTrack
    from media_plane.protocols.webrtc.fanout import StreamFanout
    from media_plane.protocols.webrtc.h264 import avc_decoder_configuration
    from tests.media_plane.protocols.webrtc.test_rtp_output import FakeLink

    async def scenario() -> None:
        fanout = StreamFanout("s", asyncio.get_running_loop())
        fanout.on_tracks(VideoTrack(Codec.H264, avc_decoder_configuration(SPS, PPS)), None)
        idr = len(IDR).to_bytes(4, "big") + IDR
        delta = len(SLICE).to_bytes(4, "big") + SLICE
        # A 4 s GOP at 60 fps: longer than a viewer's usual queue margin.
        fanout.on_packet(MediaPacket(TrackKind.VIDEO, 0, 0, idr, True))
        for n in range(1, 240):
            fanout.on_packet(MediaPacket(TrackKind.VIDEO, n * 1500, n * 1500, delta, False))
        viewer = fanout.add_viewer(video=True, audio=False)
        assert viewer.video is not None
        fake = FakeLink()
        viewer.video.attach(fake.link())
        async with asyncio.timeout(5):
            while viewer.video.frames < 240:
                await asyncio.sleep(0)
        packets = fake.packets()
        first = packets[0]
        assert first.marker  # SPS, PPS and IDR in one STAP-A
        assert split_annexb(H264PayloadDescriptor.parse(first.payload)[1]) == [SPS, PPS, IDR]
        stamps = [p.timestamp - first.timestamp for p in packets]
        assert len(packets) == 240 and stamps == sorted(stamps) and len(set(stamps)) == 240
        assert stamps[-1] == 239  # one tick apart: shown at once, not a GOP late
        assert fanout.stats().video_encoders == 0
        fanout.on_end()
        assert viewer.video.closed and viewer.video.track.readyState == "ended"

    asyncio.run(scenario())


def test_trickle_fragments() -> None:
    from media_plane.protocols.webrtc.trickle import parse_fragment

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
