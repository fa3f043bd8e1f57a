"""RTP packets as the edge writes them to WHEP viewers (RFC 3550, RFC 8285, RFC 4588). Pure.

The fixed header is packed per packet (sequence number, marker); the header extension
block is the same for every packet of one send stream except the 24-bit abs-send-time,
so it is prepared once per stream and patched once per batch of frames (`block`).
The layout is aiortc's (`RtpPacket.serialize`): the same extensions, in the same order,
so a receiver cannot tell the two apart; tests compare them byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "EXTENSION_ABS_SEND_TIME",
    "EXTENSION_MID",
    "HeaderExtensions",
    "RtpParameters",
    "abs_send_time",
    "ntp_time",
    "rtp_header",
    "rtx_payload",
]

EXTENSION_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
EXTENSION_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

#: V=2, no padding, no CSRC; the X bit is added when there are extensions.
_VERSION = 0x80
_EXTENSION_BIT = 0x10
_FIXED_HEADER = struct.Struct("!BBHII")
#: RFC 8285 4.2: one-byte header form, for ids 1-14 and values of 1-16 bytes.
_ONE_BYTE_PROFILE = 0xBEDE
#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
_NTP_UNIX_OFFSET = 2_208_988_800


@dataclass(frozen=True, slots=True)
class RtpParameters:
    """What one negotiated send stream needs to write its RTP (from the SDP answer)."""

    ssrc: int
    payload_type: int
    #: RFC 4588 retransmission stream, if the viewer negotiated one.
    rtx_ssrc: int
    rtx_payload_type: int | None = None
    mid: str | None = None
    #: RFC 8285 extension ids; None when the viewer did not negotiate the extension.
    mid_extension: int | None = None
    abs_send_time_extension: int | None = None


class HeaderExtensions:
    """The extension block of one send stream: mid (constant) and abs-send-time.

    RFC 8285 one-byte form when every id and length allows it, else two-byte form (as
    aiortc chooses); padded to a 32-bit boundary with zero bytes."""

    __slots__ = ("_constant", "_prefix", "_suffix")

    def __init__(self, parameters: RtpParameters) -> None:
        elements: list[tuple[int, bytes | None]] = []
        if parameters.mid is not None and parameters.mid_extension:
            elements.append((parameters.mid_extension, parameters.mid.encode()))
        if parameters.abs_send_time_extension:
            # None marks where the 3-byte time goes.
            elements.append((parameters.abs_send_time_extension, None))
        one_byte = all(
            0 < ident < 15 and 0 < (3 if value is None else len(value)) <= 16
            for ident, value in elements
        )
        head = b""
        tail = b""
        seen_time = False
        for ident, value in elements:
            length = 3 if value is None else len(value)
            element = bytes([(ident << 4) | (length - 1)] if one_byte else [ident, length])
            if value is None:
                head += element
                seen_time = True
            elif seen_time:
                tail += element + value
            else:
                head += element + value
        size = len(head) + (3 if seen_time else 0) + len(tail)
        padding = b"\x00" * (-size % 4)
        profile = _ONE_BYTE_PROFILE if one_byte else 0x1000
        preamble = struct.pack("!HH", profile, (size + len(padding)) // 4) if elements else b""
        self._prefix = preamble + head
        self._suffix = tail + padding
        #: The whole block when no part of it changes per packet; None otherwise.
        self._constant: bytes | None = None if seen_time else self._prefix + self._suffix

    def block(self, send_time: int) -> bytes:
        """The block with `send_time` (24-bit abs-send-time) filled in."""
        if self._constant is not None:
            return self._constant
        return self._prefix + send_time.to_bytes(3, "big") + self._suffix


def rtp_header(
    payload_type: int,
    marker: bool,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extensions: bytes,
) -> bytes:
    """An RTP header; `extensions` is a `HeaderExtensions.block` (or empty)."""
    first = _VERSION | _EXTENSION_BIT if extensions else _VERSION
    fixed = _FIXED_HEADER.pack(
        first, (0x80 if marker else 0) | payload_type, sequence_number, timestamp, ssrc
    )
    return fixed + extensions


def rtx_payload(original_sequence_number: int, payload: bytes) -> bytes:
    """RFC 4588 4: the retransmission payload is the original sequence number, then the
    original payload."""
    return original_sequence_number.to_bytes(2, "big") + payload


def ntp_time(unix_seconds: float) -> int:
    """64-bit NTP timestamp (RFC 3550 4) of a Unix time."""
    return int((unix_seconds + _NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def abs_send_time(ntp: int) -> int:
    """The abs-send-time extension's value: 6.18 fixed-point seconds, 24 bits."""
    return (ntp >> 14) & 0xFFFFFF
