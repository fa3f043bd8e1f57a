"""The two places where the edge reaches inside aiortc 1.16 / aioice 0.13 (pinned).

Both are per-connection: nothing global is patched, so other peer connections in the same
process (test clients, say) behave as stock aiortc.

* Host candidates. aioice gathers on every interface address except 127.0.0.1 and offers
  no option to choose; the edge must offer the addresses it is configured with (loopback in
  tests, the public address in production). `offer_host_addresses` replaces the address
  list of each ICE gatherer of one peer connection.
* Encoded frames on ingest. An `RTCRtpReceiver` hands every reassembled frame to a decoder
  thread through a queue; the edge wants the encoded frame, never a decode. `tap_receiver`
  swaps that queue for one that gives frames to a callback on the event loop (the caller of
  `put` is the receiver's RTP handler, a coroutine on the loop). The decoder thread then
  waits idle until the receiver stops and sends its end marker, which passes through.

* Shared H.264 packetization. aiortc packetizes H.264 (STAP-A/FU-A) per sender;
  `install_h264_packer` gives a sender a packer that asks a shared cache first, so each
  frame is split and fragmented once per stream, not once per viewer. The fragmentation is
  aiortc's own (`H264Encoder._packetize`).
* Opus senders. aiortc creates an `OpusEncoder` for every audio sender, and that
  constructor allocates a libopus encoder context even when the sender is only ever given
  packets. `install_opus_packer` gives a sender a packer instead, so the one Opus encoder
  of a stream is the shared transcoder's. (Its H.264 and VP8 encoders create their codec
  context on first encode only, which a packet-fed sender never reaches.)

tests/media_plane/protocols/webrtc/test_aiortc_seams.py fails if an aiortc upgrade moves
either seam.
"""

from __future__ import annotations

import fractions
import queue
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from av.packet import Packet
from av.stream import Stream

__all__ = [
    "EncodedFrameCallback",
    "H264Payloads",
    "MarkerJitterBuffer",
    "active_ssrc",
    "h264_payloads",
    "install_h264_packer",
    "install_opus_packer",
    "offer_host_addresses",
    "replace_keyframe_handler",
    "request_keyframe",
    "sender_encoder",
    "tap_receiver",
]

#: (codec name, frame data, RTP timestamp mapped to start at 0, in the codec's clock rate)
EncodedFrameCallback = Callable[[str, bytes, int], None]


def offer_host_addresses(pc: RTCPeerConnection, addresses: Sequence[str]) -> None:
    """Gather host candidates on exactly `addresses` (call before setLocalDescription)."""
    chosen = list(addresses)
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport.iceGatherer._connection
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


_OPUS_TIME_BASE = fractions.Fraction(1, 48_000)


class _OpusPacker:
    """What `RTCRtpSender` needs of an encoder when it is only given Opus packets."""

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        pts = packet.pts or 0
        return [bytes(packet)], int(pts * packet.time_base / _OPUS_TIME_BASE)

    def encode(self, frame: object, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("this sender takes encoded Opus packets only")


def install_opus_packer(sender: RTCRtpSender) -> None:
    """Make an audio sender pack the Opus packets it is given without owning an encoder."""
    setattr(sender, "_RTCRtpSender__encoder", _OpusPacker())  # noqa: B010


def sender_encoder(sender: RTCRtpSender) -> Any:
    """The encoder object aiortc holds for `sender` (for tests and stats)."""
    return getattr(sender, "_RTCRtpSender__encoder", None)


#: RTP payloads for one H.264 access unit (Annex B), as aiortc's sender would make them.
H264Payloads = Callable[["Packet[Stream]"], list[bytes]]


def h264_payloads(nal_units: list[bytes]) -> list[bytes]:
    """aiortc's STAP-A / FU-A packetization of one access unit's NAL units."""
    return list(H264Encoder._packetize(nal_units))


_VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)


class _H264Packer:
    def __init__(self, payloads: H264Payloads) -> None:
        self._payloads = payloads

    def pack(self, packet: Packet[Stream]) -> tuple[list[bytes], int]:
        pts = packet.pts or 0
        return self._payloads(packet), int(pts * packet.time_base / _VIDEO_TIME_BASE)

    def encode(self, frame: object, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("this sender takes encoded H.264 packets only")


def install_h264_packer(sender: RTCRtpSender, payloads: H264Payloads) -> None:
    """Make a video sender take its RTP payloads from `payloads` (a shared cache)."""
    setattr(sender, "_RTCRtpSender__encoder", _H264Packer(payloads))  # noqa: B010
