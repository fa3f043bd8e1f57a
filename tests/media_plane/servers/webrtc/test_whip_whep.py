"""WHIP publish and WHEP playback with real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
import time

import aioice.ice
import psutil
import pytest
from aiortc import RTCPeerConnection

from media_plane.edge_engine import (
    PublishDenied,
    StreamStarted,
    ViewerEnded,
    ViewerProgress,
)
from media_plane.media.protocol import MediaProtocol
from media_plane.servers.webrtc._aiortc_seams import sender_encoder
from tests.media_plane.servers.webrtc.clients import (
    Received,
    Session,
    SyntheticAudio,
    SyntheticVideo,
    consume_audio,
    consume_video,
    negotiate,
    peer,
    prefer,
)
from tests.media_plane.webrtc_edge import (
    GOOD_KEY,
    PLAY_TOKEN,
    PLAYBACK_ID,
    PRIVATE_KEY,
    PRIVATE_PLAYBACK_ID,
    Edge,
    has_video,
)

pytestmark = [pytest.mark.media, pytest.mark.asyncio(loop_scope="function")]


async def publish(
    edge: Edge, key: str = GOOD_KEY, codec: str = "H264", *, in_path: bool = True
) -> Session:
    pc = peer()
    pc.addTransceiver(SyntheticVideo(320, 240), direction="sendonly")
    pc.addTransceiver(SyntheticAudio(), direction="sendonly")
    prefer(pc, "video", codec)
    url = f"/whip/{key}" if in_path else "/whip"
    result = await negotiate(edge.http, pc, url, None if in_path else key)
    if not isinstance(result, Session):
        await pc.close()
        raise AssertionError(f"publish refused: {result.status_code} {result.text}")
    return result


class Viewer:
    def __init__(self) -> None:
        self.pc = peer()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.received = Received()
        self.tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: object) -> None:
            consume = consume_video if getattr(track, "kind", "") == "video" else consume_audio
            self.tasks.append(asyncio.ensure_future(consume(track, self.received)))  # type: ignore[arg-type]

    async def play(self, edge: Edge, playback_id: str = PLAYBACK_ID, token: str | None = None):  # type: ignore[no-untyped-def]
        return await negotiate(edge.http, self.pc, f"/whep/{playback_id}", token)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def video_ready(edge: Edge) -> None:
    """Wait until the published stream's video reaches its WHEP fan-out."""
    await edge.wait_for(lambda: has_video(edge.engine, PLAYBACK_ID))


async def frames_within(viewer: Viewer, count: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while len(viewer.received.sizes) < count:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_whip_publish_plays_over_whep_at_the_published_size(edge: Edge, codec: str) -> None:
    publisher = await publish(edge, codec=codec)
    viewer = Viewer()
    try:
        await edge.wait_for(lambda: edge.engine.registry.is_live("stream-1"))
        fanout = edge.engine.webrtc.fanout(PLAYBACK_ID) if edge.engine.webrtc else None
        await edge.wait_for(lambda: fanout is not None and fanout.video is not None)
        assert fanout is not None and fanout.video is not None
        assert fanout.video.codec.value == codec.lower()
        result = await viewer.play(edge)
        assert isinstance(result, Session), result
        assert result.location.startswith("/whep/session/")
        await frames_within(viewer, 10)
        # Frames keep arriving (how fast is the benchmarks' business), and audio flows too.
        await frames_within(viewer, len(viewer.received.sizes) + 15)
        await edge.wait_for(lambda: viewer.received.audio_frames > 10)
        assert set(viewer.received.sizes) == {(320, 240)}
        deleted = await edge.http.delete(result.location)
        assert deleted.status_code == 200
        await edge.wait_for(
            lambda: edge.engine.webrtc is not None and edge.engine.webrtc.stats().viewers == 0
        )
    finally:
        await viewer.close()
        await edge.http.delete(publisher.location)
        await publisher.pc.close()
    await edge.wait_for(lambda: not edge.engine.registry.is_live("stream-1"))
    kinds = edge.hooks.kinds()
    assert kinds.index("stream_started") < kinds.index("viewer_started")
    assert kinds.index("viewer_ended") < kinds.index("stream_ended")
    [started] = edge.hooks.of(StreamStarted)
    assert started.protocol == "whip"
    assert (started.media.width, started.media.height) == (320, 240)
    [ended] = edge.hooks.of(ViewerEnded)
    assert ended.protocol == "whep"
    assert int(ended.bytes_sent) > 0
    # A WHEP play is authorized as a WHEP play (it reached the control plane as HLS once).
    assert edge.hooks.play_calls == [(PLAYBACK_ID, MediaProtocol.WHEP)]


async def test_whip_key_in_the_authorization_header(edge: Edge) -> None:
    publisher = await publish(edge, in_path=False)
    try:
        assert edge.hooks.publish_calls[-1] == (GOOD_KEY, "whip")
        await edge.wait_for(lambda: edge.engine.registry.is_live("stream-1"))
    finally:
        await edge.http.delete(publisher.location)
        await publisher.pc.close()


async def test_publish_denials_map_to_http_statuses(edge: Edge) -> None:
    async def refused(key: str) -> int:
        pc = peer()
        pc.addTransceiver(SyntheticVideo(), direction="sendonly")
        try:
            result = await negotiate(edge.http, pc, f"/whip/{key}")
            assert not isinstance(result, Session)
            return result.status_code
        finally:
            await pc.close()

    assert await refused("sk_wrong") == 401
    assert await refused("sk_disabled") == 403
    publisher = await publish(edge)
    try:
        assert await refused(GOOD_KEY) == 409
    finally:
        await edge.http.delete(publisher.location)
        await publisher.pc.close()
    denied = edge.hooks.of(PublishDenied)
    assert [e.reason for e in denied] == [
        "invalid_key",
        "stream_disabled",
        "already_live",
    ]
    assert {e.protocol for e in denied} == {"whip"}


async def test_play_denials_map_to_http_statuses(edge: Edge) -> None:
    unknown = Viewer()
    try:
        result = await unknown.play(edge, "pb_nobody")
        assert not isinstance(result, Session) and result.status_code == 404
    finally:
        await unknown.close()
    not_live = Viewer()
    try:
        result = await not_live.play(edge, PLAYBACK_ID)
        assert not isinstance(result, Session) and result.status_code == 404
        assert "not live" in result.text
    finally:
        await not_live.close()
    publisher = await publish(edge, PRIVATE_KEY)
    try:
        await edge.wait_for(lambda: has_video(edge.engine, PRIVATE_PLAYBACK_ID))
        anonymous = Viewer()
        try:
            result = await anonymous.play(edge, PRIVATE_PLAYBACK_ID)
            assert not isinstance(result, Session) and result.status_code == 401
            assert result.headers["WWW-Authenticate"].startswith("Bearer")
        finally:
            await anonymous.close()
        holder = Viewer()
        try:
            result = await holder.play(edge, PRIVATE_PLAYBACK_ID, PLAY_TOKEN)
            assert isinstance(result, Session)
            await frames_within(holder, 5)
        finally:
            await holder.close()
    finally:
        await edge.http.delete(publisher.location)
        await publisher.pc.close()


async def test_bad_offers_get_400_with_a_reason(edge: Edge) -> None:
    sdp = {"Content-Type": "application/sdp"}
    garbage = await edge.http.post(f"/whip/{GOOD_KEY}", content=b"hello", headers=sdp)
    assert garbage.status_code == 400 and "v=0" in garbage.text
    empty = await edge.http.post(f"/whep/{PLAYBACK_ID}", content=b"", headers=sdp)
    assert empty.status_code == 400
    wrong_type = await edge.http.post(f"/whip/{GOOD_KEY}", content=b"v=0\r\n", headers={})
    assert wrong_type.status_code == 415
    no_media = await edge.http.post(
        f"/whip/{GOOD_KEY}",
        content=b"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        headers=sdp,
    )
    assert no_media.status_code == 400 and "no audio or video" in no_media.text
    empty_media = await edge.http.post(f"/whip/{GOOD_KEY}", content=b"v=0\r\nm=\r\n", headers=sdp)
    assert empty_media.status_code == 400 and "malformed SDP offer" in empty_media.text
    # An offer with only G.711 audio: nothing the edge can publish.
    pc = peer()
    pc.addTransceiver(SyntheticAudio(), direction="sendonly")
    prefer(pc, "audio", "PCMU")
    try:
        result = await negotiate(edge.http, pc, f"/whip/{GOOD_KEY}")
        assert not isinstance(result, Session)
        assert result.status_code == 400 and "no usable codec" in result.text
    finally:
        await pc.close()
    assert not edge.engine.registry.live()
    # Refused before authorization: the hook never heard of these.
    assert edge.hooks.publish_calls == []


async def test_options_patch_and_unknown_sessions(edge: Edge) -> None:
    preflight = await edge.http.options(
        "/whip",
        headers={"Origin": "https://studio.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Location" in preflight.headers["Access-Control-Expose-Headers"]
    patch = await edge.http.patch("/whip/session/abc", content=b"a=candidate")
    assert patch.status_code == 415 and "trickle-ice-sdpfrag" in patch.text
    patch = await edge.http.patch(
        "/whip/session/abc",
        content=b"a=ice-ufrag:x\r\n",
        headers={"Content-Type": "application/trickle-ice-sdpfrag"},
    )
    assert patch.status_code == 404
    missing = await edge.http.delete("/whep/session/abc")
    assert missing.status_code == 404
    get = await edge.http.get(f"/whip/{GOOD_KEY}")
    assert get.status_code == 405 and get.headers["Allow"] == "POST, OPTIONS"


def _udp_sockets() -> int:
    return len(psutil.Process().net_connections(kind="udp"))


async def test_a_viewer_that_never_connects_is_dropped_and_its_ports_freed() -> None:
    import httpx

    from media_plane.edge_engine import MediaEngine
    from tests.media_plane.webrtc_edge import Hooks, edge_settings

    engine = MediaEngine(edge_settings(webrtc_connect_timeout_s=1.0), Hooks())
    await engine.start()
    try:
        assert engine.webrtc is not None
        sessions = engine.webrtc
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.webrtc_port}") as http:
            before = _udp_sockets()
            pc = RTCPeerConnection()
            pc.addTransceiver(SyntheticVideo(), direction="sendonly")
            # The offer is real, but the peer is closed before it could ever connect.
            await pc.setLocalDescription(await pc.createOffer())
            offer = pc.localDescription.sdp
            await pc.close()
            response = await http.post(
                f"/whip/{GOOD_KEY}", content=offer, headers={"Content-Type": "application/sdp"}
            )
            assert response.status_code == 201
            assert sessions.stats().publishers == 1
            assert engine.registry.is_live("stream-1")
            async with asyncio.timeout(5):
                while sessions.stats().publishers:
                    await asyncio.sleep(0.05)
            assert sessions.stats().connect_timeouts == 1
            assert not engine.registry.is_live("stream-1")
            assert _udp_sockets() <= before
    finally:
        await engine.stop()


async def test_a_publish_that_never_connects_holds_the_key_but_is_never_live() -> None:
    import httpx

    from media_plane.edge_engine import MediaEngine
    from tests.media_plane.webrtc_edge import Hooks, edge_settings

    hooks = Hooks()
    engine = MediaEngine(edge_settings(webrtc_connect_timeout_s=2.0), hooks)
    await engine.start()
    # A real peer, open all along, that posts its offer and ignores the answer: its ICE
    # never starts, so the edge's checks are never nominated and DTLS never begins.
    silent = peer()
    silent.addTransceiver(SyntheticVideo(), direction="sendonly")
    silent.addTransceiver(SyntheticAudio(), direction="sendonly")
    try:
        assert engine.webrtc is not None
        sessions = engine.webrtc
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{engine.webrtc_port}", timeout=10.0
        ) as http:
            edge = Edge(engine, hooks, http)
            await silent.setLocalDescription(await silent.createOffer())
            before = _udp_sockets()
            response = await http.post(
                f"/whip/{GOOD_KEY}",
                content=silent.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
            )
            assert response.status_code == 201
            # The session holds the key: a concurrent second publisher gets 409...
            second = peer()
            second.addTransceiver(SyntheticVideo(), direction="sendonly")
            try:
                refused = await negotiate(http, second, f"/whip/{GOOD_KEY}")
                assert not isinstance(refused, Session) and refused.status_code == 409
            finally:
                await second.close()
            # ...but the stream is not live: no started event, not playable, and the
            # engine's stats (heartbeats, the streams gauge) list it as awaiting media.
            (held,) = engine.stats().streams
            assert held.stream_id == "stream-1" and not held.live
            viewer = Viewer()
            try:
                play = await viewer.play(edge)
                assert not isinstance(play, Session) and play.status_code == 404
            finally:
                await viewer.close()
            async with asyncio.timeout(10):
                while sessions.stats().publishers:
                    await asyncio.sleep(0.05)
            assert sessions.stats().connect_timeouts == 1
            assert silent.connectionState != "connected"
            assert not engine.registry.is_live("stream-1")
            assert engine.stats().streams == []
            # Cleaned up without a trace in the stream's lifecycle.
            assert not {"stream_started", "stream_ended", "ingest_health"} & set(hooks.kinds())
            assert _udp_sockets() <= before
            # The key is free again, and a publisher that sends media goes live.
            publisher = await publish(edge)
            try:
                await edge.wait_for(lambda: "stream_started" in hooks.kinds())
                (stream,) = engine.stats().streams
                assert stream.live
            finally:
                await http.delete(publisher.location)
                await publisher.pc.close()
            await edge.wait_for(lambda: "stream_ended" in hooks.kinds())
            assert hooks.kinds().count("stream_started") == 1
    finally:
        await silent.close()
        await engine.stop()


async def test_a_viewer_that_vanishes_is_released_by_consent_checks(
    edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 7675 consent: 6 failed checks 5 s apart in aioice; shortened here.
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    monkeypatch.setattr(aioice.ice, "CONSENT_FAILURES", 3)
    publisher = await publish(edge)
    viewer = Viewer()
    try:
        await video_ready(edge)
        result = await viewer.play(edge)
        assert isinstance(result, Session)
        await frames_within(viewer, 5)
        assert edge.engine.webrtc is not None
        assert edge.engine.webrtc.stats().viewers == 1
        # The viewer's sockets go away without a word (a closed laptop lid, a lost network).
        for transceiver in viewer.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.transport.close()
        sessions = edge.engine.webrtc
        assert sessions is not None
        await edge.wait_for(lambda: sessions.stats().viewers == 0, timeout=30)
        ended = edge.hooks.of(ViewerEnded)
        assert ended and ended[0].reason in ("peer_lost", "peer_closed")
        assert edge.engine.stats().viewers == 0
        # The publisher is unaffected.
        assert edge.engine.registry.is_live("stream-1")
    finally:
        await viewer.close()
        await edge.http.delete(publisher.location)
        await publisher.pc.close()


async def test_viewers_get_no_encoder_of_their_own(edge: Edge) -> None:
    publisher = await publish(edge)
    viewers = [Viewer() for _ in range(3)]
    try:
        await video_ready(edge)
        for viewer in viewers:
            assert isinstance(await viewer.play(edge), Session)
        for viewer in viewers:
            await frames_within(viewer, 5)
        assert edge.engine.webrtc is not None
        stats = edge.engine.webrtc.stats()
        assert (stats.viewers, stats.video_encoders, stats.audio_transcoders) == (3, 0, 0)
        sessions = list(edge.engine.webrtc._sessions.values())
        senders = [
            t.sender for s in sessions if s.start.role == "play" for t in s.pc.getTransceivers()
        ]
        assert len(senders) == 6
        for sender in senders:
            # The edge writes the RTP: aiortc's sender loop never got a frame to encode or
            # pack, so it never even created an encoder object.
            assert sender_encoder(sender) is None
    finally:
        for viewer in viewers:
            await viewer.close()
        await edge.http.delete(publisher.location)
        await publisher.pc.close()


async def test_ice_servers_are_advertised_in_link_headers() -> None:
    import httpx

    from media_plane.edge_engine import MediaEngine
    from tests.media_plane.webrtc_edge import Hooks, edge_settings

    engine = MediaEngine(edge_settings(ice_servers=("stun:stun.example.net:3478",)), Hooks())
    await engine.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.webrtc_port}") as http:
            response = await http.options("/whip")
        assert response.headers["Link"] == '<stun:stun.example.net:3478>; rel="ice-server"'
    finally:
        await engine.stop()


async def test_engine_stop_releases_every_session_thread_and_task() -> None:
    import threading

    import httpx

    from media_plane.edge_engine import MediaEngine
    from tests.media_plane.webrtc_edge import Hooks, edge_settings

    threads_before = {t.ident for t in threading.enumerate()}
    tasks_before = asyncio.all_tasks()
    udp_before = _udp_sockets()
    engine = MediaEngine(edge_settings(), Hooks())
    await engine.start()
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.webrtc_port}")
    viewer = Viewer()
    edge = Edge(engine, Hooks(), http)
    # VP8 with audio: an aiortc receiver thread per track and an HLS transcode thread.
    publisher = await publish(edge, codec="VP8")
    try:
        await edge.wait_for(lambda: has_video(engine, PLAYBACK_ID))
        assert isinstance(await viewer.play(edge), Session)
        await frames_within(viewer, 5)
        assert engine.webrtc is not None
        edge_pcs = [session.pc for session in engine.webrtc._sessions.values()]
        assert len(edge_pcs) == 2
        edge_ice = {
            t.sender.transport.transport._connection
            for pc in edge_pcs
            for t in pc.getTransceivers()
        }
        # Neither side hangs up: stopping the engine must release everything by itself.
        await engine.stop()
        assert {pc.connectionState for pc in edge_pcs} == {"closed"}
        assert engine.webrtc is not None and engine.webrtc.stats().viewers == 0
        assert engine.webrtc.stats().publishers == 0
        assert not engine.registry.live()
    finally:
        await viewer.close()
        await publisher.pc.close()
        await http.aclose()

    # asyncio_N are the loop's default executor, shut down with the loop.
    def leaked_threads() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.ident not in threads_before and t.is_alive() and not t.name.startswith("asyncio_")
        ]

    # Threads and sockets go just after the peers close: waited for, under a deadline.
    deadline = time.monotonic() + 10
    while (leaked_threads() or _udp_sockets() > udp_before) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert leaked_threads() == []
    # Tasks of the edge's own ICE connections (consent checks) must be gone; the client
    # peers' are theirs (aiortc leaves one running when the remote closed first).
    leaked_tasks = [
        t
        for t in asyncio.all_tasks() - tasks_before
        if not t.done()
        and (
            getattr(t.get_coro(), "cr_frame", None) is None
            or t.get_coro().cr_frame.f_locals.get("self") in edge_ice  # type: ignore[union-attr]
            or "media_plane" in repr(t.get_coro())
        )
    ]
    assert leaked_tasks == []
    assert _udp_sockets() <= udp_before


async def test_a_retry_replaces_a_publish_that_never_connected(edge: Edge) -> None:
    stale = RTCPeerConnection()
    stale.addTransceiver(SyntheticVideo(), direction="sendonly")
    await stale.setLocalDescription(await stale.createOffer())
    offer = stale.localDescription.sdp
    await stale.close()
    response = await edge.http.post(
        f"/whip/{GOOD_KEY}", content=offer, headers={"Content-Type": "application/sdp"}
    )
    assert response.status_code == 201
    assert edge.engine.registry.is_live("stream-1")
    # At once, the key is still held by the publish being negotiated...
    pc = peer()
    pc.addTransceiver(SyntheticVideo(), direction="sendonly")
    try:
        early = await negotiate(edge.http, pc, f"/whip/{GOOD_KEY}")
        assert not isinstance(early, Session) and early.status_code == 409
    finally:
        await pc.close()
    # ...but once it has had time to connect and has not, a retry takes over.
    await asyncio.sleep(3.1)
    retry = await publish(edge)
    try:
        assert edge.engine.webrtc is not None
        sessions = edge.engine.webrtc
        assert sessions is not None
        await edge.wait_for(lambda: sessions.stats().publishers == 1)
        assert edge.engine.webrtc.stats().ended == {"replaced": 1}
        await video_ready(edge)
        # Connected, the key is taken for good.
        await asyncio.sleep(3.1)
        pc = peer()
        pc.addTransceiver(SyntheticVideo(), direction="sendonly")
        try:
            third = await negotiate(edge.http, pc, f"/whip/{GOOD_KEY}")
            assert not isinstance(third, Session) and third.status_code == 409
        finally:
            await pc.close()
    finally:
        await edge.http.delete(retry.location)
        await retry.pc.close()


async def test_trickled_candidates_reach_the_session(edge: Edge) -> None:
    from aiortc import RTCSessionDescription

    pc = peer()
    pc.addTransceiver(SyntheticVideo(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    lines = pc.localDescription.sdp.splitlines()
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))
    pwd = next(line for line in lines if line.startswith("a=ice-pwd:"))
    assert candidates
    # The offer goes first without candidates, as a trickling client sends it.
    offer = "\r\n".join(
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    )
    response = await edge.http.post(
        f"/whip/{GOOD_KEY}", content=offer + "\r\n", headers={"Content-Type": "application/sdp"}
    )
    try:
        assert response.status_code == 201, response.text
        assert response.headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
        location, tag = response.headers["Location"], response.headers["ETag"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        fragment = "\r\n".join([ufrag, pwd, "m=video 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0"])
        fragment += "\r\n" + "\r\n".join(candidates) + "\r\na=end-of-candidates\r\n"
        trickle = {"Content-Type": "application/trickle-ice-sdpfrag"}
        stale = await edge.http.patch(
            location, content=fragment, headers={**trickle, "If-Match": '"other"'}
        )
        assert stale.status_code == 412
        restart = await edge.http.patch(
            location, content=fragment.replace(ufrag, "a=ice-ufrag:zzzz"), headers=trickle
        )
        assert restart.status_code == 405 and "restart" in restart.text
        patched = await edge.http.patch(
            location, content=fragment, headers={**trickle, "If-Match": tag}
        )
        assert patched.status_code == 204
        assert edge.engine.webrtc is not None
        [session] = edge.engine.webrtc._sessions.values()
        remote = session.pc.getTransceivers()[0].receiver.transport.transport
        hosts = {c.ip for c in remote.getRemoteCandidates()}
        assert {line.split()[4] for line in candidates} <= hosts
        await video_ready(edge)
    finally:
        if response.status_code == 201:
            await edge.http.delete(response.headers["Location"])
        await pc.close()


async def test_a_whep_viewer_trickles_its_candidates_and_plays(edge: Edge) -> None:
    """The edge keeps no parsed offer for a viewer after answering: a trickled candidate
    still reaches ICE, and the viewer plays over it."""
    from aiortc import RTCSessionDescription

    publisher = await publish(edge)
    viewer = Viewer()
    try:
        await video_ready(edge)
        pc = viewer.pc
        await pc.setLocalDescription(await pc.createOffer())
        lines = pc.localDescription.sdp.splitlines()
        candidates = [line for line in lines if line.startswith("a=candidate:")]
        ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))
        pwd = next(line for line in lines if line.startswith("a=ice-pwd:"))
        offer = "\r\n".join(
            line
            for line in lines
            if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
        )
        response = await edge.http.post(
            f"/whep/{PLAYBACK_ID}",
            content=offer + "\r\n",
            headers={"Content-Type": "application/sdp"},
        )
        assert response.status_code == 201, response.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        fragment = "\r\n".join([ufrag, pwd, "m=video 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0"])
        fragment += "\r\n" + "\r\n".join(candidates) + "\r\na=end-of-candidates\r\n"
        patched = await edge.http.patch(
            response.headers["Location"],
            content=fragment,
            headers={"Content-Type": "application/trickle-ice-sdpfrag"},
        )
        assert patched.status_code == 204
        assert edge.engine.webrtc is not None
        [session] = [s for s in edge.engine.webrtc._sessions.values() if s.start.role == "play"]
        ice = session.pc.getTransceivers()[0].sender.transport.transport
        assert {line.split()[4] for line in candidates} <= {c.ip for c in ice.getRemoteCandidates()}
        await frames_within(viewer, 5)
        await edge.http.delete(response.headers["Location"])
    finally:
        await viewer.close()
        await edge.http.delete(publisher.location)
        await publisher.pc.close()


async def test_whep_viewers_report_progress_like_hls_viewers() -> None:
    import httpx

    from media_plane.edge_engine import MediaEngine
    from tests.media_plane.webrtc_edge import Hooks, edge_settings

    hooks = Hooks()
    engine = MediaEngine(edge_settings(viewer_progress_s=1.0), hooks)
    await engine.start()
    viewer = Viewer()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{engine.webrtc_port}") as http:
            edge = Edge(engine, hooks, http)
            publisher = await publish(edge)
            try:
                await edge.wait_for(lambda: has_video(engine, PLAYBACK_ID))
                result = await viewer.play(edge)
                assert isinstance(result, Session)
                await edge.wait_for(lambda: "viewer_progress" in hooks.kinds(), timeout=5)
                assert engine.webrtc is not None
                # One viewer: the bytes sent to every WHEP viewer are its bytes.
                sent_before_end = engine.webrtc.stats().bytes_out
                await http.delete(result.location)
            finally:
                await http.delete(publisher.location)
                await publisher.pc.close()
    finally:
        await viewer.close()
        await engine.stop()
    events = [e for e in hooks.events if e.kind.value.startswith("viewer_")]
    assert events[0].kind.value == "viewer_started"
    assert events[-1].kind.value == "viewer_ended"
    progress = hooks.of(ViewerProgress)
    assert progress and all(e.protocol == "whep" for e in progress)
    assert progress[0].bytes_sent > 0
    assert 900 <= progress[0].watched_ms <= 3000
    # The end event carries what came after the last progress event, as for HLS: the
    # events add up to everything sent, and the last one holds only the remainder.
    [ended] = hooks.of(ViewerEnded)
    total = sum(e.bytes_sent for e in progress) + ended.bytes_sent
    assert total >= sent_before_end
    assert ended.bytes_sent < total
