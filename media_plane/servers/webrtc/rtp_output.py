"""A stream's RTP to its WHEP viewers, written by the edge instead of aiortc's sender loop.

aiortc's `RTCRtpSender` runs one coroutine per track that builds an `RtpPacket` object per
packet (header extensions, clock reads), serializes it and awaits four coroutine layers
down to `sendto`: about 25 us of CPU per packet, 280 packets/s per 2.5 Mbit/s viewer.
Here the frame's payloads are made once per stream (`RtpFrame`); per viewer and packet
only the 12-byte header is packed, the extension block is reused for the whole frame, and
the packet is SRTP-protected with the viewer's own libsrtp session and written straight to
the ICE pair's datagram transport (`SrtpLink`, built by `_aiortc_seams.bind_sender`).

aiortc's sender is still negotiated and started as usual, but its track
(`PassthroughTrack`) ends at the first `recv()`, so its RTP loop exits at once and never
creates an encoder; its RTCP loop keeps sending sender reports (fed through `SrtpLink.report`),
answers receiver reports, and hands NACKs to `RtpOutput.retransmit` and PLI/FIR to the
session's keyframe handler.

One `SendScheduler` per stream sends what the outputs have pending in slices of at most
`_SLICE_S` of CPU, one frame per output per turn, so a keyframe times every viewer never
holds the event loop for longer than a slice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_plane.protocols.webrtc.rtp_packets import (
    HeaderExtensions,
    RtpParameters,
    abs_send_time,
    ntp_time,
    rtp_header,
    rtx_payload,
)

__all__ = ["PassthroughTrack", "RtpFrame", "RtpOutput", "SendScheduler", "SrtpLink"]

logger = logging.getLogger(__name__)

#: CPU one scheduler turn may take before it lets the event loop run (loop lag budget).
_SLICE_S = 0.002
#: Video frames remembered per output for NACKs: about 0.5 s at 30 fps, longer than a
#: NACK's round trip. The payloads are the stream's, shared with every viewer, so an
#: entry costs a tuple and two ints (about 140 bytes). Audio keeps none: aiortc offers no
#: NACK feedback for Opus, so no viewer asks.
_HISTORY_FRAMES = 16


@dataclass(frozen=True, slots=True)
class RtpFrame:
    """One frame's RTP payloads, made once per stream and sent as is to every viewer."""

    payloads: tuple[bytes, ...]
    keyframe: bool
    #: Payload octets, as RTCP sender reports count them.
    size: int

    @classmethod
    def of(cls, payloads: list[bytes] | tuple[bytes, ...], keyframe: bool) -> RtpFrame:
        return cls(tuple(payloads), keyframe, sum(len(p) for p in payloads))


@dataclass(frozen=True, slots=True)
class SrtpLink:
    """Where one negotiated sender's RTP goes once its DTLS transport is connected."""

    parameters: RtpParameters
    #: SRTP-protect one RTP packet, given as header and payload, with the sender's
    #: transport's libsrtp session, and write it to the selected ICE pair's socket.
    send: Callable[[bytes, bytes], None]
    #: False once the DTLS transport has closed (the peer went away).
    is_open: Callable[[], bool]
    #: (NTP time, RTP timestamp, packets, payload octets) after each frame, for the
    #: sender reports aiortc's RTCP loop sends.
    report: Callable[[int, int, int, int], None]


class PassthroughTrack(MediaStreamTrack):
    """The track an aiortc sender is given: `recv()` yields nothing and ends the track,
    so aiortc's RTP loop exits quietly at its first frame and never encodes, packs or
    sends. (Waiting instead would keep a task, its coroutine frames and an event per
    sender for the session's life, for nothing.) Ending the track ends only that loop:
    the sender's RTCP loop, which the edge relies on, runs until the sender stops."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> NoReturn:
        raise MediaStreamError


class RtpOutput:
    """One viewer's video or audio: frames wait here until the scheduler sends them.

    Until the viewer's sender is negotiated and connected (`attach`) frames only queue, so a
    joining viewer's cached GOP is sent the moment DTLS completes. A viewer whose queue
    reaches `limit` frames (its sends cannot keep up) drops them and resumes at the next
    keyframe, so its decoder never gets a frame whose reference it lacks."""

    def __init__(
        self,
        kind: str,
        scheduler: SendScheduler,
        limit: int,
        track: PassthroughTrack | None = None,
    ) -> None:
        self.kind = kind
        #: The placeholder the viewer's aiortc sender is given; it holds no state, so one
        #: can serve every viewer of a stream (`StreamFanout` shares one per kind).
        self.track = track if track is not None else PassthroughTrack(kind)
        self._scheduler = scheduler
        self._limit = limit
        self._pending: deque[tuple[RtpFrame, int]] = deque()
        self._link: SrtpLink | None = None
        self._extensions: HeaderExtensions | None = None
        # aiortc's choice: the lower half of the range, so that SRTP's rollover counter is
        # not needed early in a session (some receivers get it wrong).
        self._sequence = random.getrandbits(16) % 32768
        self._rtx_sequence = random.getrandbits(16) % 32768
        self._timestamp_origin = random.getrandbits(32)
        self._history: deque[tuple[int, int, RtpFrame]] = deque(
            maxlen=_HISTORY_FRAMES if kind == "video" else 0
        )
        self._skipping = False
        #: True while the output is in its scheduler's ready queue.
        self.scheduled = False
        self.closed = False
        self.frames = 0
        self.packets = 0
        self.bytes = 0
        self.skipped = 0
        self.retransmitted = 0

    @property
    def attached(self) -> bool:
        return self._link is not None

    def offer(self, frame: RtpFrame, rtp_time: int) -> None:
        """Queue `frame`, stamped `rtp_time` (the codec's clock, before the random
        origin is added)."""
        if self.closed:
            return
        if self._skipping and not frame.keyframe:
            self.skipped += 1
            return
        if len(self._pending) >= self._limit:
            self.skipped += len(self._pending) + 1
            self._pending.clear()
            self._skipping = self.kind == "video"
            if self._skipping:
                return
        self._skipping = False
        self._pending.append((frame, rtp_time))
        if self._link is not None:
            self._scheduler.wake(self)

    def attach(self, link: SrtpLink) -> None:
        """The sender is negotiated and DTLS is up: start sending."""
        if self.closed:
            return
        self._link = link
        self._extensions = HeaderExtensions(link.parameters)
        if self._pending:
            self._scheduler.wake(self)

    def send_next(self, ntp: int) -> bool:
        """Send the oldest pending frame; True if more are pending."""
        link = self._link
        extensions = self._extensions
        if link is None or extensions is None or not self._pending:
            return False
        if not link.is_open():
            self._detach()
            return False
        frame, rtp_time = self._pending.popleft()
        parameters = link.parameters
        payload_type, ssrc = parameters.payload_type, parameters.ssrc
        send = link.send
        timestamp = (self._timestamp_origin + rtp_time) & 0xFFFFFFFF
        block = extensions.block(abs_send_time(ntp))
        first = sequence = self._sequence
        last = len(frame.payloads) - 1
        for index, payload in enumerate(frame.payloads):
            send(rtp_header(payload_type, index == last, sequence, timestamp, ssrc, block), payload)
            sequence = (sequence + 1) & 0xFFFF
        self._sequence = sequence
        self._history.append((first, timestamp, frame))
        self.frames += 1
        self.packets += last + 1
        self.bytes += frame.size
        link.report(ntp, timestamp, self.packets, self.bytes)
        return bool(self._pending)

    def retransmit(self, sequence_number: int) -> None:
        """Answer a NACK (RFC 4585 6.2.1): resend the packet, on the RTX stream if the
        viewer negotiated one (RFC 4588), if it is still in the history."""
        link = self._link
        extensions = self._extensions
        if link is None or extensions is None or not link.is_open():
            return
        for first, timestamp, frame in reversed(self._history):
            offset = (sequence_number - first) & 0xFFFF
            if offset >= len(frame.payloads):
                continue
            parameters = link.parameters
            payload = frame.payloads[offset]
            marker = offset == len(frame.payloads) - 1
            block = extensions.block(abs_send_time(ntp_time(time.time())))
            if parameters.rtx_payload_type is not None:
                header = rtp_header(
                    parameters.rtx_payload_type,
                    marker,
                    self._rtx_sequence,
                    timestamp,
                    parameters.rtx_ssrc,
                    block,
                )
                payload = rtx_payload(sequence_number, payload)
                self._rtx_sequence = (self._rtx_sequence + 1) & 0xFFFF
            else:
                header = rtp_header(
                    parameters.payload_type,
                    marker,
                    sequence_number,
                    timestamp,
                    parameters.ssrc,
                    block,
                )
            link.send(header, payload)
            self.retransmitted += 1
            return

    def fail(self) -> None:
        """Sending raised: stop sending to this viewer (its session ends on its own)."""
        self._detach()

    def close(self) -> None:
        # The track is left alone: it may be shared, and it ends at its first `recv()`.
        self.closed = True
        self._detach()

    def _detach(self) -> None:
        self._link = None
        self._pending.clear()
        self._history.clear()


class SendScheduler:
    """Sends a stream's pending frames in slices of event-loop time, round robin over
    its outputs (one frame each per turn)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        slice_s: float = _SLICE_S,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = loop
        self._slice_s = slice_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._ready: deque[RtpOutput] = deque()
        self._handle: asyncio.Handle | None = None
        self._closed = False
        self.turns = 0

    def wake(self, output: RtpOutput) -> None:
        if output.scheduled or self._closed:
            return
        output.scheduled = True
        self._ready.append(output)
        if self._handle is None:
            self._handle = self._loop.call_soon(self._turn)

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        for output in self._ready:
            output.scheduled = False
        self._ready.clear()

    def _turn(self) -> None:
        self._handle = None
        self.turns += 1
        ready = self._ready
        deadline = self._clock() + self._slice_s
        # One clock read per turn: abs-send-time and the sender reports' NTP time are
        # within one slice of the truth.
        ntp = ntp_time(self._wall_clock())
        while ready:
            output = ready.popleft()
            output.scheduled = False
            try:
                more = output.send_next(ntp)
            except Exception:
                logger.exception("sending to a viewer failed; it gets nothing more")
                output.fail()
                more = False
            if more:
                output.scheduled = True
                ready.append(output)
            if self._clock() >= deadline:
                break
        if ready and not self._closed:
            self._handle = self._loop.call_soon(self._turn)
