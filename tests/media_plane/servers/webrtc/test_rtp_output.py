"""The edge's own RTP send path: packets as aiortc would write them, sequence continuity,
NACK/RTX, pacing by the scheduler, and an SRTP round trip into a real aiortc receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media_plane.protocols.webrtc.rtp_packets import (
    EXTENSION_ABS_SEND_TIME,
    EXTENSION_MID,
    HeaderExtensions,
    RtpParameters,
    abs_send_time,
    ntp_time,
    rtp_header,
)
from media_plane.servers.webrtc._aiortc_seams import bind_sender
from media_plane.servers.webrtc.rtp_output import RtpFrame, RtpOutput, SendScheduler, SrtpLink

PARAMETERS = RtpParameters(
    ssrc=0x11223344,
    payload_type=102,
    rtx_ssrc=0x55667788,
    rtx_payload_type=103,
    mid="0",
    mid_extension=1,
    abs_send_time_extension=3,
)


def extensions_map(parameters: RtpParameters) -> HeaderExtensionsMap:
    extensions = []
    if parameters.mid_extension:
        extensions.append(RTCRtpHeaderExtensionParameters(parameters.mid_extension, EXTENSION_MID))
    if parameters.abs_send_time_extension:
        extensions.append(
            RTCRtpHeaderExtensionParameters(
                parameters.abs_send_time_extension, EXTENSION_ABS_SEND_TIME
            )
        )
    mapping = HeaderExtensionsMap()
    mapping.configure(RTCRtpParameters(headerExtensions=extensions))
    return mapping


@dataclass
class FakeLink:
    """An `SrtpLink` whose protect is the identity and whose socket is a list."""

    parameters: RtpParameters = PARAMETERS
    written: list[bytes] = field(default_factory=list)
    reports: list[tuple[int, int, int, int]] = field(default_factory=list)
    open: bool = True

    def link(self) -> SrtpLink:
        return SrtpLink(
            self.parameters,
            lambda header, payload: self.written.append(header + payload),
            lambda: self.open,
            lambda *values: self.reports.append(values),
        )

    def packets(self) -> list[RtpPacket]:
        mapping = extensions_map(self.parameters)
        return [RtpPacket.parse(data, mapping) for data in self.written]


@dataclass
class Handle:
    """asyncio.Handle's `cancel` and `cancelled`, for a callback `drain` runs."""

    callback: Callable[[], None]
    was_cancelled: bool = False

    def cancel(self) -> None:
        self.was_cancelled = True

    def cancelled(self) -> bool:
        return self.was_cancelled


class Loop:
    """Just enough of an event loop for the scheduler: `call_soon`, run by `drain`."""

    def call_soon(self, callback: Callable[[], None]) -> Handle:
        return Handle(callback)


def drain(scheduler: SendScheduler) -> None:
    """Run the scheduler's turns until nothing is pending."""
    while (handle := scheduler._handle) is not None:
        assert isinstance(handle, Handle) and not handle.cancelled()
        handle.callback()


@pytest.mark.parametrize(
    "parameters",
    [
        PARAMETERS,
        RtpParameters(ssrc=1, payload_type=111, rtx_ssrc=2, mid="1", mid_extension=4),
        RtpParameters(ssrc=1, payload_type=96, rtx_ssrc=2, abs_send_time_extension=14),
        RtpParameters(ssrc=1, payload_type=96, rtx_ssrc=2),
        # An id above 14 needs RFC 8285's two-byte form.
        RtpParameters(ssrc=9, payload_type=96, rtx_ssrc=2, mid="v", mid_extension=15),
    ],
)
def test_packets_are_byte_for_byte_what_aiortc_serializes(parameters: RtpParameters) -> None:
    send_time = abs_send_time(ntp_time(1_700_000_000.25))
    ours = (
        rtp_header(
            parameters.payload_type,
            True,
            65535,
            0xFFFFFFF0,
            parameters.ssrc,
            HeaderExtensions(parameters).block(send_time),
        )
        + b"payload"
    )
    theirs = RtpPacket(
        payload_type=parameters.payload_type,
        marker=1,
        sequence_number=65535,
        timestamp=0xFFFFFFF0,
        ssrc=parameters.ssrc,
        payload=b"payload",
    )
    theirs.extensions.mid = parameters.mid
    theirs.extensions.abs_send_time = send_time
    mapping = extensions_map(parameters)
    assert ours == theirs.serialize(mapping)
    parsed = RtpPacket.parse(ours, mapping)
    assert (parsed.payload_type, parsed.marker, parsed.sequence_number) == (
        parameters.payload_type,
        1,
        65535,
    )
    assert parsed.extensions.mid == (parameters.mid if parameters.mid_extension else None)


def test_ntp_time_and_abs_send_time() -> None:
    # 1970-01-01 is 2208988800 s after the NTP epoch; half a second is 0x80000000.
    assert ntp_time(0.5) == (2_208_988_800 << 32) | 0x8000_0000
    # 6.18 fixed point: the low 6 bits of the seconds, 18 bits of fraction.
    assert abs_send_time(ntp_time(0.5)) == ((2_208_988_800 % 64) << 18) | (1 << 17)


def test_sequence_numbers_run_on_across_frames_and_the_marker_ends_each_frame() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=10)
    fake = FakeLink()
    frames = [RtpFrame.of([b"a", b"b", b"c"], True), RtpFrame.of([b"d"], False)]
    output.offer(frames[0], 0)
    output.attach(fake.link())
    output.offer(frames[1], 3000)
    drain(scheduler)
    packets = fake.packets()
    assert [p.payload for p in packets] == [b"a", b"b", b"c", b"d"]
    first = packets[0].sequence_number
    assert [p.sequence_number for p in packets] == [(first + i) & 0xFFFF for i in range(4)]
    assert [p.marker for p in packets] == [0, 0, 1, 1]
    assert {p.ssrc for p in packets} == {PARAMETERS.ssrc}
    assert {p.payload_type for p in packets} == {PARAMETERS.payload_type}
    assert packets[0].timestamp == packets[2].timestamp
    assert (packets[3].timestamp - packets[0].timestamp) & 0xFFFFFFFF == 3000
    assert {p.extensions.mid for p in packets} == {"0"}
    # The sender report counters follow: packets and payload octets so far.
    assert fake.reports[-1][1:] == (packets[3].timestamp, 4, 4)
    assert output.bytes == 4 and output.frames == 2


def test_sequence_numbers_wrap() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=10)
    output._sequence = 65534
    fake = FakeLink()
    output.attach(fake.link())
    output.offer(RtpFrame.of([b"a", b"b", b"c"], True), 0)
    drain(scheduler)
    assert [p.sequence_number for p in fake.packets()] == [65534, 65535, 0]


def test_a_nack_is_answered_on_the_rtx_stream() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=10)
    fake = FakeLink()
    output.attach(fake.link())
    output.offer(RtpFrame.of([b"a", b"b"], True), 0)
    output.offer(RtpFrame.of([b"c"], False), 3000)
    drain(scheduler)
    lost = fake.packets()[1]
    output.retransmit(lost.sequence_number)
    output.retransmit((lost.sequence_number + 100) & 0xFFFF)  # never sent: ignored
    rtx = fake.packets()[3:]
    assert len(rtx) == 1 and output.retransmitted == 1
    assert (rtx[0].ssrc, rtx[0].payload_type) == (PARAMETERS.rtx_ssrc, PARAMETERS.rtx_payload_type)
    recovered = unwrap_rtx(rtx[0], PARAMETERS.payload_type, PARAMETERS.ssrc)
    assert (recovered.sequence_number, recovered.payload, recovered.timestamp) == (
        lost.sequence_number,
        b"b",
        lost.timestamp,
    )
    assert recovered.marker == 1


def test_without_rtx_a_nack_resends_the_packet_itself() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=10)
    fake = FakeLink(RtpParameters(ssrc=5, payload_type=96, rtx_ssrc=6))
    output.attach(fake.link())
    output.offer(RtpFrame.of([b"a", b"b"], True), 0)
    drain(scheduler)
    output.retransmit(fake.packets()[0].sequence_number)
    assert fake.written[2] == fake.written[0]


def test_a_viewer_that_falls_behind_resumes_at_a_keyframe() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=3)
    for n in range(3):
        output.offer(RtpFrame.of([b"%d" % n], n == 0), n)
    output.offer(RtpFrame.of([b"late"], False), 3)  # full: everything queued goes
    output.offer(RtpFrame.of([b"later"], False), 4)
    output.offer(RtpFrame.of([b"key"], True), 5)
    fake = FakeLink()
    output.attach(fake.link())
    drain(scheduler)
    assert [p.payload for p in fake.packets()] == [b"key"]
    assert output.skipped == 5


def test_a_closed_transport_stops_the_sending() -> None:
    scheduler = SendScheduler(Loop())  # type: ignore[arg-type]
    output = RtpOutput("video", scheduler, limit=10)
    fake = FakeLink()
    output.attach(fake.link())
    fake.open = False
    output.offer(RtpFrame.of([b"a"], True), 0)
    drain(scheduler)
    assert fake.written == [] and not output.attached


def test_the_scheduler_lets_the_loop_run_between_slices_and_takes_turns() -> None:
    ticks = iter(range(1000))
    # Every clock read is 1 ms later: a 1.5 ms slice ends after two frames.
    scheduler = SendScheduler(
        Loop(),  # type: ignore[arg-type]
        slice_s=0.0015,
        clock=lambda: next(ticks) / 1000,
    )
    outputs = [RtpOutput("video", scheduler, limit=10) for _ in range(3)]
    fakes = [FakeLink() for _ in outputs]
    for output, fake in zip(outputs, fakes, strict=True):
        output.attach(fake.link())
        for n in range(2):
            output.offer(RtpFrame.of([b"%d" % n], n == 0), n)
    handle = scheduler._handle
    assert isinstance(handle, Handle)
    handle.callback()
    # Round robin: the first turn sent one frame to each of the first two viewers, then
    # gave the loop back with a turn scheduled for the rest.
    assert [o.frames for o in outputs] == [1, 1, 0] and scheduler._handle is not None
    drain(scheduler)
    assert scheduler.turns == 3  # six frames, two per turn
    assert all(len(f.written) == 2 for f in fakes)


@pytest.mark.asyncio(loop_scope="function")
async def test_srtp_round_trip_into_a_real_aiortc_receiver() -> None:
    edge, viewer = RTCPeerConnection(), RTCPeerConnection()
    scheduler = SendScheduler(asyncio.get_running_loop())
    output = RtpOutput("video", scheduler, limit=100)
    received: list[RtpPacket] = []
    nacks: list[int] = []
    try:
        transceiver = edge.addTransceiver(output.track, direction="sendonly")
        transceiver.setCodecPreferences(
            [
                c
                for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType in ("video/H264", "video/rtx")
            ]
        )

        def on_nack(sequence_number: int) -> None:
            nacks.append(sequence_number)
            output.retransmit(sequence_number)

        bind_sender(transceiver.sender, output.attach, on_nack)
        viewer.addTransceiver("video", direction="recvonly")
        await viewer.setLocalDescription(await viewer.createOffer())
        await edge.setRemoteDescription(viewer.localDescription)
        await edge.setLocalDescription(await edge.createAnswer())
        dtls = viewer.getTransceivers()[0].receiver.transport
        handle_rtp = dtls._handle_rtp_data

        async def after_srtp(data: bytes, arrival_time_ms: int) -> None:
            # aiortc has unprotected the packet with its own libsrtp session.
            received.append(RtpPacket.parse(data, dtls._rtp_header_extensions_map))
            await handle_rtp(data, arrival_time_ms)

        dtls._handle_rtp_data = after_srtp  # type: ignore[method-assign]
        await viewer.setRemoteDescription(
            RTCSessionDescription(edge.localDescription.sdp, "answer")
        )
        for n in range(5):
            output.offer(RtpFrame.of([b"\x7c\x85" + bytes([n]) * 1200] * 3, n == 0), n * 3000)
        async with asyncio.timeout(10):
            while len(received) < 15:
                await asyncio.sleep(0.02)
        assert output.attached
        media = received[:15]
        assert [p.payload[2] for p in media] == [n for n in range(5) for _ in range(3)]
        first = media[0].sequence_number
        assert [p.sequence_number for p in media] == [(first + i) & 0xFFFF for i in range(15)]
        ssrc = transceiver.sender._ssrc
        assert {p.ssrc for p in media} == {ssrc}
        assert f"a=ssrc:{ssrc} " in edge.localDescription.sdp
        assert {p.extensions.mid for p in media} == {transceiver.mid}
        # A NACK from the receiver reaches the edge's history over SRTCP and comes back
        # on the RTX stream.
        await viewer.getTransceivers()[0].receiver._send_rtcp_nack(ssrc, [first + 4])
        async with asyncio.timeout(10):
            while len(received) < 16:
                await asyncio.sleep(0.02)
        assert nacks == [first + 4]
        rtx = received[15]
        assert rtx.ssrc == transceiver.sender._rtx_ssrc
        assert rtx.payload[:2] == (first + 4).to_bytes(2, "big")
        assert rtx.payload[2:] == media[4].payload
        # aiortc's sender reports count what the edge sent.
        stats = await transceiver.sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        assert outbound.packetsSent == output.packets == 15
    finally:
        scheduler.close()
        output.close()
        await edge.close()
        await viewer.close()


def test_srtp_sender_protects_exactly_as_pylibsrtp_does() -> None:
    import os

    from pylibsrtp import Policy, Session

    from media_plane.servers.webrtc._aiortc_seams import srtp_sender

    key = os.urandom(30)

    def session(direction: int) -> Session:
        return Session(
            Policy(key=key, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
        )

    ours, theirs, receiver = (
        session(Policy.SSRC_ANY_OUTBOUND),
        session(Policy.SSRC_ANY_OUTBOUND),
        session(Policy.SSRC_ANY_INBOUND),
    )
    written: list[bytes] = []
    send = srtp_sender(ours, written.append)
    block = HeaderExtensions(PARAMETERS).block(0x123456)
    for sequence in range(3):
        payload = os.urandom(1100)
        packet = rtp_header(102, sequence == 2, sequence, 9000, PARAMETERS.ssrc, block) + payload
        send(packet[:20], packet[20:])
        assert written[-1] == theirs.protect(packet)
        assert receiver.unprotect(written[-1]) == packet
    with pytest.raises(ValueError):
        send(b"\x80" * 12, bytes(1500))
