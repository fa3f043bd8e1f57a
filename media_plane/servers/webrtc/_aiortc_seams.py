"""The places where the edge reaches inside aiortc 1.16 / aioice 0.13 (pinned).

All are per-connection: nothing global is patched, so other peer connections in the same
process (test clients, say) behave as stock aiortc.

* Host candidates. aioice gathers on every interface address except 127.0.0.1 and offers
  no option to choose; the edge must offer the addresses it is configured with (loopback in
  tests, the public address in production). `offer_host_addresses` replaces the address
  list of each ICE gatherer of one peer connection.
* Consent checks after close. aioice's `Connection.connect` starts the consent-freshness
  task (RFC 7675) once its check list completes; when `close()` runs after the check list
  completed but before `connect` resumed, the task starts on a closed connection, which no
  longer has a nominated pair, so no check is sent and none fails: it runs for the life of
  the process. A session deleted during ICE hits this. `stop_consent_after_close` ends
  that task as soon as it is started.
* Encoded frames on ingest. An `RTCRtpReceiver` hands every reassembled frame to a decoder
  thread through a queue; the edge wants the encoded frame, never a decode. `tap_receiver`
  swaps that queue for one that gives frames to a callback on the event loop (the caller of
  `put` is the receiver's RTP handler, a coroutine on the loop). The decoder thread then
  waits idle until the receiver stops and sends its end marker, which passes through.

* Packetization. The fan-out packetizes each frame once per stream with aiortc's own
  STAP-A/FU-A (`H264Encoder._packetize`) and VP8 payload descriptor code
  (`Vp8Encoder._packetize`), so viewers get exactly what aiortc would have sent.
* The send path of WHEP viewers. aiortc's `RTCRtpSender._run_rtp` costs about 25 us of
  CPU per packet (an `RtpPacket` object, header extensions, clock reads and four awaited
  coroutine layers per packet, one coroutine per viewer waking per frame); at 280 packets/s
  per 2.5 Mbit/s viewer that caps an edge near 100 viewers per core and makes every
  viewer's sender run in the same loop iteration. `bind_sender` lets aiortc negotiate and
  start the sender as usual (its RTCP loop keeps sending sender reports and handling
  receiver reports, NACK and PLI), and when aiortc starts it (DTLS connected) hands the
  edge an `SrtpLink`: the negotiated payload types, SSRCs and header extension ids, the
  transport's libsrtp session (called directly: `srtp_sender`), and the selected ICE
  pair's datagram socket. The edge then
  writes RTP itself (`rtp_output.RtpOutput`); the sender's track never yields a frame, so
  aiortc's RTP loop stays idle and never creates an encoder. The sender-report counters
  (name-mangled attributes of the sender) are set from the edge's counts, and NACKs reach
  the edge's history instead of aiortc's, which stays empty.

* Memory per viewer. Each `RTCPeerConnection` generates its own certificate and key
  (about 18 KB of OpenSSL memory and an EC key generation) and each DTLS transport its own
  `SSL_CTX` (about 26 KB), all alike. `use_identity` gives a peer connection the edge's
  `DtlsIdentity`: one certificate for every session (as browsers do per origin), renewed
  daily (aiortc's are valid for 30 days), whose SSL context is made once. And the
  receiver aiortc creates for every sendonly transceiver never receives a packet, yet
  holds a receive-side bandwidth estimator (a 1000-bucket rate counter, about 97 KB) and
  a 512-slot jitter buffer, a decoder queue and threading event, and asyncio events for
  an RTCP task it never runs; `idle_receiver` drops them.
* Negotiated descriptions. aiortc keeps the parsed offer and answer (every codec with its
  parameters and feedback, 14 KB for an aiortc offer, more for a browser's) for the
  connection's life, to create later offers and answers. WHEP never renegotiates (an ICE
  restart is refused), and once negotiated a sendonly connection reads only the remote
  media sections' mids and candidate lists (trickle ICE); `forget_negotiation` keeps
  just those.

tests/media_plane/servers/webrtc/test_aiortc_seams.py fails if an aiortc upgrade moves
any of them.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, sdp
from aiortc.codecs import is_rtx
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from OpenSSL import SSL

from media_plane.protocols.webrtc.rtp_packets import (
    EXTENSION_ABS_SEND_TIME,
    EXTENSION_MID,
    RtpParameters,
)
from media_plane.servers.webrtc.rtp_output import SrtpLink

__all__ = [
    "DtlsIdentity",
    "EncodedFrameCallback",
    "MarkerJitterBuffer",
    "active_ssrc",
    "bind_sender",
    "forget_negotiation",
    "h264_payloads",
    "idle_receiver",
    "offer_host_addresses",
    "replace_keyframe_handler",
    "request_keyframe",
    "sender_encoder",
    "srtp_sender",
    "tap_receiver",
    "use_identity",
    "vp8_payloads",
]

#: (codec name, frame data, RTP timestamp mapped to start at 0, in the codec's clock rate)
EncodedFrameCallback = Callable[[str, bytes, int], None]


def _ice_connections(pc: RTCPeerConnection) -> Iterator[Any]:
    """The aioice `Connection` behind each transceiver's ICE transport."""
    for transceiver in pc.getTransceivers():
        yield transceiver.sender.transport.transport.iceGatherer._connection


def offer_host_addresses(pc: RTCPeerConnection, addresses: Sequence[str]) -> None:
    """Gather host candidates on exactly `addresses` (call before setLocalDescription)."""
    chosen = list(addresses)
    for connection in _ice_connections(pc):
        if getattr(connection, "_tidecast_addresses", None) is not None:
            continue
        original = connection.get_component_candidates

        async def gather(
            component: int,
            addresses: list[str],
            timeout: int = 5,  # noqa: ASYNC109 (aioice's signature)
            _original: Any = original,
        ) -> Any:
            return await _original(component=component, addresses=chosen, timeout=timeout)

        # Per instance on purpose: other connections in the process keep aioice's gathering.
        setattr(connection, "get_component_candidates", gather)  # noqa: B010
        setattr(connection, "_tidecast_addresses", chosen)  # noqa: B010


def stop_consent_after_close(pc: RTCPeerConnection) -> None:
    """Consent checks never outlive `close()` (call once the transceivers exist)."""
    for connection in _ice_connections(pc):
        if getattr(connection, "_tidecast_consent_guard", False):
            continue
        original = connection.connect

        async def connect(_connection: Any = connection, _original: Any = original) -> None:
            await _original()
            task = _connection._query_consent_task
            if _connection._closing and task is not None:
                task.cancel()
                _connection._query_consent_task = None

        # Per instance on purpose, as offer_host_addresses.
        setattr(connection, "connect", connect)  # noqa: B010
        setattr(connection, "_tidecast_consent_guard", True)  # noqa: B010


class _FrameTap(queue.Queue[Any]):
    def __init__(self, on_frame: EncodedFrameCallback) -> None:
        super().__init__()
        self._on_frame = on_frame

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            # The receiver is stopping: let the idle decoder thread exit.
            super().put(item, block, timeout)
            return
        codec, frame = item
        self._on_frame(codec.name, frame.data, frame.timestamp)


class MarkerJitterBuffer(JitterBuffer):
    """A jitter buffer that hands a frame over as soon as it is complete.

    Video: the frame at the head of the buffer is complete when its packets are contiguous
    up to one with the RTP marker bit (the last packet of an access unit, RFC 6184 5.1 and
    RFC 7741 4.1), or when the next frame has begun. Audio: every packet is a frame (Opus
    puts one frame in each packet). Gaps still wait for retransmission as in aiortc's.
    Packets without payload (browsers send RTP padding to probe bandwidth, stamped with the
    last frame's timestamp) make no frame: an empty packet is a flush to a decoder.
    """

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        while True:
            head = self._take_head()
            if head is None:
                return None
            data, timestamp = head
            if data:
                return JitterFrame(data=data, timestamp=timestamp)

    def _take_head(self) -> tuple[bytes, int] | None:
        """Remove and return the frame at the head if it is complete."""
        origin = self._origin
        if origin is None:
            return None
        packets: list[Any] = []
        timestamp = 0
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if not packets:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                break
            packets.append(packet)
            if packet.marker or not self._is_video:
                break
        else:
            return None
        self.remove(len(packets))
        return b"".join(p._data for p in packets), timestamp


def tap_receiver(receiver: RTCRtpReceiver, kind: str, on_frame: EncodedFrameCallback) -> None:
    """Deliver `receiver`'s encoded frames to `on_frame` instead of decoding them.

    Call after setRemoteDescription and before the connection is established."""
    setattr(receiver, "_RTCRtpReceiver__decoder_queue", _FrameTap(on_frame))  # noqa: B010
    # aiortc's sizes: 512 packets for video (keyframes span hundreds), 16 for audio.
    buffer = MarkerJitterBuffer(capacity=512 if kind == "video" else 16, is_video=kind == "video")
    setattr(receiver, "_RTCRtpReceiver__jitter_buffer", buffer)  # noqa: B010


def replace_keyframe_handler(sender: RTCRtpSender, handler: Callable[[], None]) -> None:
    """Call `handler` when the viewer of `sender` asks for a keyframe (PLI or FIR).

    aiortc answers those by forcing its encoder's next frame to be a keyframe; a sender fed
    encoded packets has no encoder, so the request must go to whoever has one."""
    setattr(sender, "_send_keyframe", handler)  # noqa: B010


async def request_keyframe(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Send a PLI to the publisher of `media_ssrc` (RFC 4585 6.3.1)."""
    await receiver._send_rtcp_pli(media_ssrc)


def active_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the receiver heard last, if any."""
    sources = receiver.getSynchronizationSources()
    return int(sources[0].source) if sources else None


def sender_encoder(sender: RTCRtpSender) -> Any:
    """The encoder object aiortc holds for `sender` (for tests and stats)."""
    return getattr(sender, "_RTCRtpSender__encoder", None)


def h264_payloads(nal_units: list[bytes]) -> list[bytes]:
    """aiortc's STAP-A / FU-A packetization of one access unit's NAL units."""
    return list(H264Encoder._packetize(nal_units))


def vp8_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """aiortc's VP8 payload descriptors and fragmentation of one frame (RFC 7741)."""
    return list(Vp8Encoder._packetize(frame, picture_id))


#: What aiortc's RTCP loop puts in each sender report (name-mangled attributes).
_NTP_TIMESTAMP = "_RTCRtpSender__ntp_timestamp"
_RTP_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_PACKET_COUNT = "_RTCRtpSender__packet_count"
_OCTET_COUNT = "_RTCRtpSender__octet_count"


def rtp_parameters(sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> RtpParameters:
    """What the edge needs to write `sender`'s RTP, from its negotiated parameters."""
    codec = parameters.codecs[0]
    if codec.payloadType is None:
        raise ValueError("the sender's codec has no payload type")
    rtx = next(
        (
            c.payloadType
            for c in parameters.codecs
            if is_rtx(c) and c.parameters.get("apt") == codec.payloadType
        ),
        None,
    )
    extensions = {e.uri: e.id for e in parameters.headerExtensions}
    return RtpParameters(
        ssrc=sender._ssrc,
        payload_type=codec.payloadType,
        rtx_ssrc=sender._rtx_ssrc,
        rtx_payload_type=rtx,
        mid=parameters.muxId,
        mid_extension=extensions.get(EXTENSION_MID),
        abs_send_time_extension=extensions.get(EXTENSION_ABS_SEND_TIME),
    )


def srtp_sender(session: Any, write: Callable[[bytes], None]) -> Callable[[bytes, bytes], None]:
    """Protect (header + payload) with a pylibsrtp `Session` and `write` the result.

    `Session.protect` spends about 2.5 us per packet in Python around a 1 us libsrtp call
    (a type check, a new `int *` per packet, a copy in and one out), more than the rest
    of the edge's per-packet work; this calls libsrtp on the session's own scratch
    buffer with one reused length cell, and copies header and payload in without joining
    them first. Safe because everything that uses the session runs on the event loop
    thread and returns before the buffer is used again."""
    ffi, lib = getattr(pylibsrtp, "ffi"), getattr(pylibsrtp, "lib")  # noqa: B009
    srtp = session._srtp[0]
    scratch, buffer = session._cdata, session._buffer
    capacity = len(scratch) - pylibsrtp.SRTP_MAX_TRAILER_LEN
    length = ffi.new("int *")
    protect = lib.srtp_protect

    def send(header: bytes, payload: bytes, _session: Any = session) -> None:
        # `_session` keeps the libsrtp context (freed with the Session) alive.
        split = len(header)
        end = split + len(payload)
        if end > capacity:
            raise ValueError(f"an RTP packet of {end} bytes is too long for SRTP")
        buffer[0:split] = header
        buffer[split:end] = payload
        length[0] = end
        status = protect(srtp, scratch, length)
        if status:
            raise ConnectionError(f"SRTP protect failed (libsrtp status {status})")
        write(buffer[0 : length[0]])

    return send


def srtp_link(sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> SrtpLink:
    """The edge's way to `sender`'s viewer; its DTLS transport must be connected."""
    dtls = sender.transport
    session = dtls._tx_srtp
    pair = dtls.transport._connection._nominated.get(1)
    if session is None or pair is None:
        raise ConnectionError("the sender's transport is not connected")
    datagrams = pair.protocol.transport
    address = pair.remote_addr

    def write(data: bytes) -> None:
        datagrams.sendto(data, address)

    def is_open() -> bool:
        return bool(dtls.state == "connected") and not datagrams.is_closing()

    attributes = vars(sender)

    def report(ntp: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        # Once per frame: plain dict stores, what `setattr` would do, without its cost.
        attributes[_NTP_TIMESTAMP] = ntp
        attributes[_RTP_TIMESTAMP] = rtp_timestamp
        attributes[_PACKET_COUNT] = packets
        attributes[_OCTET_COUNT] = octets

    return SrtpLink(
        rtp_parameters(sender, parameters), srtp_sender(session, write), is_open, report
    )


def bind_sender(
    sender: RTCRtpSender,
    on_connected: Callable[[SrtpLink], None],
    on_nack: Callable[[int], None],
) -> None:
    """Have the edge write `sender`'s RTP: `on_connected` gets the `SrtpLink` when aiortc
    starts the sender (DTLS is up), `on_nack` every sequence number a NACK reports lost.

    Call before the connection is established; give the sender a track that yields
    nothing (`rtp_output.PassthroughTrack`)."""
    start = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        await start(parameters)
        try:
            link = srtp_link(sender, parameters)
        except ConnectionError:
            # Closed between DTLS completing and now: the session is ending anyway, and an
            # exception here would surface inside aiortc's connect task.
            return
        on_connected(link)

    async def retransmit(sequence_number: int) -> None:
        on_nack(sequence_number)

    # Per instance, like the keyframe handler: the peer connection looks both up on the
    # sender when it starts it and when RTCP arrives.
    setattr(sender, "send", send)  # noqa: B010
    setattr(sender, "_retransmit", retransmit)  # noqa: B010


#: A shared certificate is replaced after this long (aiortc's are valid for 30 days).
_IDENTITY_LIFETIME_S = 24 * 3600.0


class _SharedCertificate(RTCCertificate):
    """An `RTCCertificate` whose SSL context is built once: every DTLS transport of the
    edge offers the same SRTP profiles, and an OpenSSL context is made to be shared by
    many connections (aiortc builds one per transport)."""

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key, cert)
        self._contexts: dict[bytes, SSL.Context] = {}

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        profiles = b":".join(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(profiles)
        if context is None:
            context = self._contexts[profiles] = super()._create_ssl_context(srtp_profiles)
        return context


class DtlsIdentity:
    """The edge's DTLS certificate, shared by its peer connections and renewed daily
    (a connection keeps the certificate it started with)."""

    def __init__(
        self,
        lifetime_s: float = _IDENTITY_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._certificate: _SharedCertificate | None = None
        self._made_at = 0.0

    def certificate(self) -> RTCCertificate:
        now = self._clock()
        if self._certificate is None or now - self._made_at >= self._lifetime_s:
            self._certificate = _SharedCertificate.generateCertificate()
            self._made_at = now
        return self._certificate


def use_identity(pc: RTCPeerConnection, identity: DtlsIdentity) -> None:
    """Make `pc` use the edge's shared certificate (call before adding transceivers:
    each DTLS transport takes the connection's certificates when it is created)."""
    setattr(pc, "_RTCPeerConnection__certificates", [identity.certificate()])  # noqa: B010


#: What an `RTCRtpReceiver` holds only to receive (name-mangled attributes), all read
#: only by `receive()`, the RTP handler and the RTCP loop, or behind the `started` check of
#: `stop()` and the decoder-thread check of `_handle_disconnect`.
_RECEIVING_STATE = tuple(
    f"_RTCRtpReceiver__{name}"
    for name in (
        "remote_bitrate_estimator",
        "nack_generator",
        "jitter_buffer",
        "decoder_queue",
        "decoder_error",
        "timestamp_mapper",
        "rtcp_started",
        "rtcp_exited",
    )
)


def idle_receiver(receiver: RTCRtpReceiver) -> None:
    """Drop what the receiver of a sendonly transceiver holds for receiving.

    aiortc makes a receiver for every transceiver but starts only those of recvonly and
    sendrecv ones, so this one never registers with the transport, gets a packet, runs a
    decoder thread or an RTCP task. What it holds for that is per viewer and never used: a
    bandwidth estimator (a 1000-bucket rate counter, about 97 KB), a jitter buffer, a
    decoder queue and error event (a `queue.Queue` and a `threading.Event`, 5 KB with
    their locks and conditions), two asyncio events. Call before the connection starts."""
    state = vars(receiver)
    for name in _RECEIVING_STATE:
        state[name] = None


def forget_negotiation(pc: RTCPeerConnection) -> None:
    """Drop the parsed descriptions of a negotiated connection whose transceivers only
    send (WHEP), keeping what aiortc still reads: the remote media sections' kind, mid and
    ICE candidates (`addIceCandidate`, for trickle ICE), so `pc.remoteDescription` is the
    offer without its codecs and SSRCs. `pc.localDescription` is None afterwards: read the
    answer first. Needs no renegotiation (WHEP has none): aiortc
    reads the full descriptions only to create offers and answers, and to start the
    receivers of transceivers that receive, which is why those are refused here."""
    if any(t.direction != "sendonly" for t in pc.getTransceivers()):
        raise ValueError("only a connection that only sends can forget its negotiation")
    state = vars(pc)
    # aiortc leaves a remote offer it answered as the pending remote description.
    slot = _PENDING_REMOTE if state[_PENDING_REMOTE] is not None else _CURRENT_REMOTE
    remote = state[slot]
    if pc.signalingState != "stable" or remote is None or state[_CURRENT_LOCAL] is None:
        raise ValueError("the connection is not negotiated")
    kept = sdp.SessionDescription()
    kept.origin, kept.group, kept.type = remote.origin, remote.group, remote.type
    for media in remote.media:
        section = sdp.MediaDescription(
            kind=media.kind, port=media.port, profile=media.profile, fmt=[]
        )
        section.rtp.muxId = media.rtp.muxId
        section.direction, section.rtcp_mux = media.direction, media.rtcp_mux
        # Shared with the ICE and DTLS transports' remote parameters: no copies.
        section.ice, section.dtls = media.ice, media.dtls
        # The offer's candidates are in the ICE transport already; the list only grows
        # with trickled ones (aiortc appends them to the remote description).
        section.ice_candidates_complete = media.ice_candidates_complete
        kept.media.append(section)
    state[slot] = kept
    state[_CURRENT_LOCAL] = None


_CURRENT_LOCAL = "_RTCPeerConnection__currentLocalDescription"
_CURRENT_REMOTE = "_RTCPeerConnection__currentRemoteDescription"
_PENDING_REMOTE = "_RTCPeerConnection__pendingRemoteDescription"
