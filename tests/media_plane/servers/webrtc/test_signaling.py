"""The WHIP/WHEP rules without sockets: routes and statuses, why a publish ended, and what
a joining viewer is sent first."""

from __future__ import annotations

from media_plane.codecs.h264 import split_annexb
from media_plane.media.hooks import PlayDenial, PublishDenial
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


def test_why_a_publish_ended() -> None:
    from media_plane.servers.webrtc.negotiation import end_reason as _end_reason

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

    from media_plane.codecs.h264 import avc_decoder_configuration
    from media_plane.media import Codec, MediaPacket, TrackKind, VideoTrack
    from media_plane.servers.webrtc.fanout import StreamFanout
    from tests.media_plane.servers.webrtc.test_rtp_output import FakeLink

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
