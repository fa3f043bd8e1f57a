"""WHIP publish and WHEP play sessions: authorization, negotiation, lifetime.

`WebRtcSessions` owns every peer connection of the edge. A session starts with an offer
(`publish` / `play`), answers it, and ends on `end()` (HTTP DELETE), when the peer's
connection fails or closes (ICE consent freshness notices a vanished peer within about
30 s), when it has not connected within `connect_timeout_s`, when its stream ends (WHEP),
or on `stop()`. Every way out goes through `_close`, which closes the peer connection
(releasing its UDP ports), detaches from the stream and reports the end exactly once.

Publishing: the offer is checked, `authorize_publish(key, WHIP, addr)` decides, the
stream starts in the registry once the answer exists, and the receivers' encoded frames
feed it (`WhipFeed`). Playing: the offer is checked, `authorize_play` decides, and the
viewer's senders are fed by the stream's `StreamFanout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from media_plane.media import Codec
from media_plane.media.events import EngineEvent, PublishDenied
from media_plane.media.hooks import (
    EngineHooks,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
)
from media_plane.media.live_stream import AlreadyLiveError, LiveStream, StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.transcode.opus_transcoder import OpusTranscoder
from media_plane.protocols.webrtc.ingest import WhipFeed
from media_plane.protocols.webrtc.offer import OfferSummary, read_offer
from media_plane.protocols.webrtc.trickle import parse_fragment
from media_plane.servers.webrtc._aiortc_seams import (
    DtlsIdentity,
    active_ssrc,
    bind_sender,
    forget_negotiation,
    idle_receiver,
    offer_host_addresses,
    replace_keyframe_handler,
    request_keyframe,
    stop_consent_after_close,
    tap_receiver,
    use_identity,
)
from media_plane.servers.webrtc.errors import (
    IceRestartError,
    OfferError,
    PlayRefusedError,
    PublishRefusedError,
    SessionChangedError,
    SessionNotFoundError,
)
from media_plane.servers.webrtc.fanout import StreamFanout, Viewer
from media_plane.servers.webrtc.negotiation import (
    capabilities,
    end_reason,
    etag,
)
from media_plane.servers.webrtc.records import (
    Answer,
    SessionStart,
    WebRtcOptions,
    WebRtcStats,
)

__all__ = ["WebRtcSessions"]

logger = logging.getLogger(__name__)

#: A publish that has not connected after this long can be taken over by a new offer
#: with the same key; before, a second offer gets 409 like any other.
_RETRY_AFTER_S = 3.0
#: How long `stop()` lets closes already under way finish before cancelling them.
_STOP_GRACE_S = 5.0
#: A publisher is asked for a keyframe at most this often (PLI), whoever asks.
_KEYFRAME_REQUEST_INTERVAL_S = 0.5


@dataclass(eq=False)
class _Session:
    start: SessionStart
    pc: RTCPeerConnection
    started_at: float
    #: The offer's ICE usernames: a trickle fragment with another one is an ICE restart.
    ice_ufrags: frozenset[str] = frozenset()
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    stream: LiveStream | None = None
    viewer: Viewer | None = None
    fanout: StreamFanout | None = None
    feed: WhipFeed | None = None
    video_receiver: RTCRtpReceiver | None = None
    closing: bool = False
    #: Set once `_close` has finished (the peer connection is closed).
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    last_keyframe_request: float = 0.0
    timer: asyncio.Task[None] | None = None
    cadence: asyncio.Task[None] | None = None


class ViewerSessionLog(Protocol):
    """Where WHEP viewers are counted (the engine's viewer sessions)."""

    def opened(
        self,
        session_id: str,
        *,
        playback_id: str,
        stream_id: str,
        client_addr: str,
        user_agent: str,
        protocol: MediaProtocol,
        bytes_sent: Callable[[], int],
        now: float,
    ) -> None: ...

    def closed(self, session_id: str, bytes_sent: int, reason: str, now: float) -> None: ...


class WebRtcSessions:
    def __init__(
        self,
        registry: StreamRegistry,
        hooks: EngineHooks,
        options: WebRtcOptions,
        *,
        viewers: ViewerSessionLog | None = None,
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self.options = options
        self._viewers = viewers
        self._sessions: dict[str, _Session] = {}
        self._fanouts: dict[str, StreamFanout] = {}
        self._publishers: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self.sessions_total = 0
        self.connect_timeouts = 0
        self._ended: dict[str, int] = {}
        #: Stopped transcoder threads, joined on `stop()` (they exit within one frame).
        self._retired_transcoders: list[OpusTranscoder] = []
        self._bytes_out_ended = 0
        self._identity = DtlsIdentity()
        registry.on_start(self._stream_started)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        for stream in self._registry.live():
            self._stream_started(stream)

    async def stop(self) -> None:
        self._running = False
        for session in list(self._sessions.values()):
            await self._close(session, "node_stopped")
        # What is left: closes started by other paths (let them finish: a cancelled close
        # leaves a half-closed peer connection), deadlines, keyframe requests.
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for fanout in list(self._fanouts.values()):
            fanout.on_end()
        self._fanouts.clear()
        await asyncio.to_thread(self._join_transcoders)

    def _join_transcoders(self) -> None:
        for transcoder in self._retired_transcoders:
            transcoder.join(5.0)
        self._retired_transcoders.clear()

    def stats(self) -> WebRtcStats:
        publishers = sum(1 for s in self._sessions.values() if s.start.role == "publish")
        return WebRtcStats(
            publishers=publishers,
            viewers=len(self._sessions) - publishers,
            sessions_total=self.sessions_total,
            connect_timeouts=self.connect_timeouts,
            video_encoders=sum(f.stats().video_encoders for f in self._fanouts.values()),
            audio_transcoders=sum(f.stats().audio_transcoders for f in self._fanouts.values()),
            bytes_out=self._bytes_out_ended
            + sum(s.viewer.bytes_sent for s in self._sessions.values() if s.viewer is not None),
            ended=dict(self._ended),
        )

    def fanout(self, playback_id: str) -> StreamFanout | None:
        stream = self._registry.by_playback_id(playback_id)
        return None if stream is None else self._fanouts.get(stream.stream_id)

    def link_headers(self) -> list[str]:
        """RFC 9725 4.6: ICE servers for the client, one `Link` value each."""
        return [f'<{url}>; rel="ice-server"' for url in self.options.ice_servers]

    # -- WHIP -----------------------------------------------------------------------------

    async def publish(
        self, key: str, body: bytes, client_addr: str, user_agent: str = ""
    ) -> Answer:
        text, summary = read_offer(body, publish=True)
        self._check_capacity()
        if not key:
            self._refused(PublishDenial.INVALID_KEY, "no stream key", client_addr)
        decision = await self._authorize_publish(key, client_addr)
        grant = decision.grant
        if grant is None:
            self._refused(
                decision.denial or PublishDenial.INVALID_KEY, decision.message, client_addr
            )
        if self._registry.is_live(grant.stream_id):
            current = self._publishers.get(grant.stream_id)
            if (
                current is None
                or current.connected.is_set()
                or time.monotonic() - current.started_at < _RETRY_AFTER_S
            ):
                self._refused(
                    PublishDenial.ALREADY_LIVE,
                    "stream is already live",
                    client_addr,
                    grant.stream_id,
                )
            # The key's holder has not connected for a while (a client retrying after its
            # ICE failed, say): the retry takes over instead of waiting out the connect
            # timeout with a 409. A publisher still connecting keeps the key.
            await self._close(current, "replaced")
        pc = self._peer_connection()
        start = SessionStart(
            uuid.uuid4().hex, "publish", grant.stream_id, grant.playback_id, client_addr, user_agent
        )
        session = _Session(start, pc, time.monotonic(), summary.ice_ufrags)
        try:
            receivers = self._publish_transceivers(pc, summary)
            answer = await self._answer(pc, text)
            stream = self._registry.start(grant, MediaProtocol.WHIP, client_addr)
        except AlreadyLiveError:
            await pc.close()
            self._refused(
                PublishDenial.ALREADY_LIVE, "stream is already live", client_addr, grant.stream_id
            )
        except BaseException:
            await pc.close()
            raise
        session.stream = stream
        session.video_receiver = receivers.get("video")
        feed = WhipFeed(stream, has_video="video" in receivers, has_audio="audio" in receivers)
        session.feed = feed

        def on_frame(codec: str, data: bytes, rtp_time: int) -> None:
            try:
                feed.frame(codec, data, rtp_time)
            except Exception:
                logger.exception("session %s: bad frame from the publisher", start.session_id)
            if feed.wants_keyframe:
                self._request_keyframe(session)

        for kind, receiver in receivers.items():
            tap_receiver(receiver, kind, on_frame)
        self._publishers[grant.stream_id] = session
        self._admit(session)
        if "video" in receivers:
            session.cadence = self._spawn(
                self._keyframe_cadence(session, grant.segment_duration), "webrtc-keyframes"
            )
        logger.info("WHIP session %s publishes stream %s", start.session_id, grant.stream_id)
        return Answer(start.session_id, answer)

    # -- WHEP -----------------------------------------------------------------------------

    async def play(
        self,
        playback_id: str,
        token: str | None,
        body: bytes,
        client_addr: str,
        user_agent: str = "",
    ) -> Answer:
        text, summary = read_offer(body, publish=False)
        self._check_capacity()
        decision = await self._authorize_play(playback_id, token, client_addr)
        if not decision.allowed:
            raise PlayRefusedError(decision.denial or PlayDenial.UNKNOWN, decision.message)
        stream = self._registry.by_playback_id(playback_id)
        fanout = None if stream is None else self._fanouts.get(stream.stream_id)
        if stream is None or fanout is None:
            raise PlayRefusedError(PlayDenial.UNKNOWN, "stream is not live")
        video, audio = fanout.video, fanout.audio
        if video is None and audio is None:
            raise PlayRefusedError(PlayDenial.UNKNOWN, "stream has not started sending media")
        want_video = video is not None and summary.has_video
        want_audio = audio is not None and summary.has_audio
        if want_video and video is not None and video.codec not in (Codec.H264, Codec.VP8):
            # aiortc packetizes H.264 and VP8 only; an HEVC publish plays over HLS.
            raise OfferError(f"{video.codec.value} video cannot be played over WebRTC here")
        if want_video and video is not None and not summary.offers(video.codec.value):
            raise OfferError(f"the stream's video is {video.codec.value}; the offer lacks it")
        if want_audio and not summary.offers("opus"):
            raise OfferError("the stream's audio is sent as Opus; the offer lacks it")
        if not (want_video or want_audio):
            raise OfferError("the offer receives none of the stream's tracks")
        pc = self._peer_connection()
        start = SessionStart(
            uuid.uuid4().hex, "play", stream.stream_id, playback_id, client_addr, user_agent
        )
        session = _Session(
            start, pc, time.monotonic(), summary.ice_ufrags, stream=stream, fanout=fanout
        )
        viewer = fanout.add_viewer(video=want_video, audio=want_audio)
        session.viewer = viewer
        try:
            for output in (viewer.video, viewer.audio):
                if output is None:
                    continue
                transceiver = pc.addTransceiver(output.track, direction="sendonly")
                codec = video.codec if output.kind == "video" and video else Codec.OPUS
                transceiver.setCodecPreferences(capabilities(output.kind, codec))
                # aiortc negotiates, runs RTCP and DTLS; the edge writes the RTP.
                bind_sender(transceiver.sender, output.attach, output.retransmit)
                idle_receiver(transceiver.receiver)
                if output.kind == "video":
                    self._watch_keyframe_requests(transceiver.sender, session)
            answer = await self._answer(pc, text)
            # Per viewer, the parsed offer and answer outweigh the rest of the session's
            # Python objects; WHEP never renegotiates, so only what ICE needs stays.
            forget_negotiation(pc)
        except BaseException:
            fanout.remove_viewer(viewer)
            await pc.close()
            raise
        self._admit(session)
        return Answer(start.session_id, answer)

    # -- ending -----------------------------------------------------------------------------

    async def trickle(
        self, session_id: str, role: str, body: bytes, if_match: str | None = None
    ) -> None:
        """Add the remote candidates of a trickle ICE fragment (a WHIP/WHEP PATCH)."""
        session = self._sessions.get(session_id)
        if session is None or session.start.role != role:
            raise SessionNotFoundError(session_id)
        if if_match not in (None, "*", etag(session_id)):
            raise SessionChangedError(session_id)
        fragment = parse_fragment(body)
        if fragment.ufrag not in session.ice_ufrags:
            raise IceRestartError("ICE restarts are not supported: start a new session")
        transceivers = session.pc.getTransceivers()
        if not transceivers:
            return
        # BUNDLE: every candidate goes to the one transport, the first media section's.
        mid = transceivers[0].mid
        for value in fragment.candidates:
            try:
                candidate = candidate_from_sdp(value)
            except (AssertionError, ValueError, IndexError) as exc:
                raise OfferError(f"malformed candidate: {value!r}") from exc
            candidate.sdpMid = mid
            await session.pc.addIceCandidate(candidate)
        if fragment.end_of_candidates:
            await session.pc.addIceCandidate(None)

    async def end(self, session_id: str, role: str) -> None:
        session = self._sessions.get(session_id)
        if session is None or session.start.role != role:
            raise SessionNotFoundError(session_id)
        await self._close(session, "client_ended")

    # -- internals ------------------------------------------------------------------------

    def _check_capacity(self) -> None:
        if len(self._sessions) >= self.options.max_sessions:
            raise PublishRefusedError(PublishDenial.UNAVAILABLE, "edge is at its session limit")

    def _refused(
        self, denial: PublishDenial, message: str, client_addr: str, stream_id: str = ""
    ) -> NoReturn:
        self._emit(
            PublishDenied(
                stream_id=stream_id,
                occurred_at=time.time(),
                protocol=MediaProtocol.WHIP,
                client_addr=client_addr,
                reason=denial.value,
                message=message,
            )
        )
        raise PublishRefusedError(denial, message)

    def _emit(self, event: EngineEvent) -> None:
        try:
            self._hooks.emit(event)
        except Exception:
            logger.exception("the host's emit hook failed for %s", event.kind)

    async def _authorize_publish(self, key: str, client_addr: str) -> PublishDecision:
        try:
            async with asyncio.timeout(self.options.authorize_timeout_s):
                return await self._hooks.authorize_publish(key, MediaProtocol.WHIP, client_addr)
        except TimeoutError:
            return PublishDecision.deny(PublishDenial.UNAVAILABLE, "authorization timed out")
        except Exception:
            logger.exception("authorize_publish failed")
            return PublishDecision.deny(PublishDenial.UNAVAILABLE, "authorization failed")

    async def _authorize_play(
        self, playback_id: str, token: str | None, client_addr: str
    ) -> PlayDecision:
        try:
            async with asyncio.timeout(self.options.authorize_timeout_s):
                return await self._hooks.authorize_play(
                    playback_id, token, client_addr, MediaProtocol.WHEP
                )
        except TimeoutError:
            return PlayDecision(False, PlayDenial.UNAVAILABLE, "authorization timed out")
        except Exception:
            logger.exception("authorize_play failed")
            return PlayDecision(False, PlayDenial.UNAVAILABLE, "authorization failed")

    def _peer_connection(self) -> RTCPeerConnection:
        # An explicit empty server list: aiortc's default is a public Google STUN server,
        # which an edge must not depend on (and cannot reach in tests).
        servers = [RTCIceServer(urls=url) for url in self.options.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        use_identity(pc, self._identity)
        return pc

    def _publish_transceivers(
        self, pc: RTCPeerConnection, summary: OfferSummary
    ) -> dict[str, RTCRtpReceiver]:
        receivers: dict[str, RTCRtpReceiver] = {}
        if summary.has_video and (summary.offers("h264") or summary.offers("vp8")):
            transceiver = pc.addTransceiver("video", direction="recvonly")
            # H.264 first: it goes into HLS without a transcode.
            transceiver.setCodecPreferences(
                capabilities("video", Codec.H264) + capabilities("video", Codec.VP8)
            )
            receivers["video"] = transceiver.receiver
        if summary.has_audio and summary.offers("opus"):
            transceiver = pc.addTransceiver("audio", direction="recvonly")
            transceiver.setCodecPreferences(capabilities("audio", Codec.OPUS))
            receivers["audio"] = transceiver.receiver
        return receivers

    async def _answer(self, pc: RTCPeerConnection, offer: str) -> str:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except (ValueError, KeyError, IndexError) as exc:
            raise OfferError(f"offer refused: {exc}") from exc
        except Exception as exc:
            # aiortc raises its own OperationError/InternalError for offers it cannot use.
            if type(exc).__module__.startswith("aiortc"):
                raise OfferError(f"offer refused: {exc}") from exc
            raise
        stop_consent_after_close(pc)
        if self.options.host_addresses:
            offer_host_addresses(pc, self.options.host_addresses)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        return str(pc.localDescription.sdp)

    def _admit(self, session: _Session) -> None:
        self._sessions[session.start.session_id] = session
        self.sessions_total += 1

        @session.pc.on("connectionstatechange")
        def state_changed() -> None:
            state = session.pc.connectionState
            if state == "connected":
                session.connected.set()
            elif state in ("failed", "closed") and not session.closing:
                reason = "peer_lost" if state == "failed" else "peer_closed"
                self._spawn(self._close(session, reason), "webrtc-close")

        session.timer = self._spawn(self._connect_deadline(session), "webrtc-connect-deadline")
        start = session.start
        if self._viewers is not None and start.role == "play":
            try:
                self._viewers.opened(
                    start.session_id,
                    playback_id=start.playback_id,
                    stream_id=start.stream_id,
                    client_addr=start.client_addr,
                    user_agent=start.user_agent,
                    protocol=MediaProtocol.WHEP,
                    bytes_sent=lambda: session.viewer.bytes_sent if session.viewer else 0,
                    now=time.monotonic(),
                )
            except Exception:
                logger.exception("viewer session start failed")

    async def _connect_deadline(self, session: _Session) -> None:
        try:
            async with asyncio.timeout(self.options.connect_timeout_s):
                await session.connected.wait()
        except TimeoutError:
            self.connect_timeouts += 1
            logger.info("session %s: peer never connected", session.start.session_id)
            session.timer = None
            await self._close(session, "connect_timeout")

    async def _close(self, session: _Session, reason: str) -> None:
        if session.closing:
            # Another path is closing it: wait for that, so callers (stop()) can rely on
            # the peer connection being closed when this returns.
            await session.closed.wait()
            return
        session.closing = True
        start = session.start
        self._sessions.pop(start.session_id, None)
        for task in (session.timer, session.cadence):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        session.timer = session.cadence = None
        self._ended[reason] = self._ended.get(reason, 0) + 1
        bytes_sent = 0
        if session.viewer is not None and session.fanout is not None:
            bytes_sent = session.viewer.bytes_sent
            self._bytes_out_ended += bytes_sent
            session.fanout.remove_viewer(session.viewer)
        if session.stream is not None and start.role == "publish":
            if self._publishers.get(start.stream_id) is session:
                del self._publishers[start.stream_id]
            last = session.feed.last_frame_at if session.feed is not None else None
            self._registry.finish(session.stream, end_reason(reason, last, time.monotonic()))
        try:
            await session.pc.close()
        except Exception:
            logger.exception("session %s: closing the peer connection failed", start.session_id)
        if self._viewers is not None and start.role == "play":
            try:
                self._viewers.closed(start.session_id, bytes_sent, reason, time.monotonic())
            except Exception:
                logger.exception("viewer session end failed")
        session.closed.set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("task %s failed", task.get_name(), exc_info=task.exception())

    def _stream_started(self, stream: LiveStream) -> None:
        if not self._running:
            return
        stream_id = stream.stream_id
        fanout = StreamFanout(
            stream_id,
            asyncio.get_running_loop(),
            on_keyframe_wanted=lambda: self._publisher_keyframe(stream_id),
            on_transcoder_stopped=self._transcoder_stopped,
        )
        self._fanouts[stream_id] = fanout
        stream.attach(fanout)
        stream.attach(_FanoutEnd(self, stream, fanout))

    async def _keyframe_cadence(self, session: _Session, interval: float) -> None:
        # HLS cuts segments on keyframes. An H.264 publisher is passed through, so its
        # keyframes are the segment boundaries, and browsers send them rarely: ask for one
        # every segment target (VP8 is transcoded with keyframes forced; no need there).
        await session.connected.wait()
        while True:
            await asyncio.sleep(interval)
            feed = session.feed
            if feed is not None and feed.video is not None and feed.video.codec is Codec.H264:
                session.last_keyframe_request = 0.0
                self._request_keyframe(session)

    def _transcoder_stopped(self, transcoder: OpusTranscoder) -> None:
        self._retired_transcoders = [t for t in self._retired_transcoders if t.alive]
        self._retired_transcoders.append(transcoder)

    def _fanout_ended(self, stream: LiveStream, fanout: StreamFanout) -> None:
        if self._fanouts.get(stream.stream_id) is fanout:
            del self._fanouts[stream.stream_id]
        for session in list(self._sessions.values()):
            if session.fanout is fanout:
                self._spawn(self._close(session, "stream_ended"), "webrtc-close")

    def _watch_keyframe_requests(self, sender: RTCRtpSender, session: _Session) -> None:
        # The request goes to the publisher (WHIP; an RTMP publisher cannot be asked).
        stream_id = session.start.stream_id
        replace_keyframe_handler(sender, lambda: self._publisher_keyframe(stream_id))

    def _publisher_keyframe(self, stream_id: str) -> None:
        publisher = self._publishers.get(stream_id)
        if publisher is not None:
            self._request_keyframe(publisher)

    def _request_keyframe(self, session: _Session) -> None:
        now = time.monotonic()
        receiver = session.video_receiver
        if receiver is None or now - session.last_keyframe_request < _KEYFRAME_REQUEST_INTERVAL_S:
            return
        ssrc = active_ssrc(receiver)
        if ssrc is None:
            return
        session.last_keyframe_request = now
        self._spawn(request_keyframe(receiver, ssrc), "webrtc-pli")


class _FanoutEnd:
    """Closes a stream's WHEP sessions when the stream ends (after the fanout heard it)."""

    def __init__(self, sessions: WebRtcSessions, stream: LiveStream, fanout: StreamFanout):
        self._sessions = sessions
        self._stream = stream
        self._fanout = fanout

    def on_tracks(self, video: object, audio: object) -> None:
        return None

    def on_packet(self, packet: object) -> None:
        return None

    def on_end(self) -> None:
        self._sessions._fanout_ended(self._stream, self._fanout)
