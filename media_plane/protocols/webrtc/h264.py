"""H.264 between RTP's Annex B access units and the engine's AVCC packets. Pure.

aiortc depayloads H.264 into Annex B (start-code separated NAL units) and packetizes from
Annex B; the engine's canonical packets are AVCC (4-byte lengths) with SPS and PPS kept
out of band in an AVCDecoderConfigurationRecord. Parameter sets seen in band on ingest
become the track's record; on egress they are put back in front of every keyframe, since a
WebRTC viewer has no other way to learn them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AccessUnit",
    "AvccToAnnexB",
    "H264FormatError",
    "avc_decoder_configuration",
    "parse_annexb",
    "split_annexb",
]

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
_START_CODE = b"\x00\x00\x00\x01"


class H264FormatError(ValueError):
    """An access unit or decoder configuration that cannot be converted."""


@dataclass(frozen=True, slots=True)
class AccessUnit:
    #: Slice and SEI NAL units, each with a 4-byte big-endian length (AVCC).
    avcc: bytes
    keyframe: bool
    sps: bytes | None = None
    pps: bytes | None = None


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B buffer (3- or 4-byte start codes), without empty ones."""
    units: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        begin = start + 3
        end = data.find(b"\x00\x00\x01", begin)
        # A 4-byte start code leaves a zero byte behind the previous unit; NAL units
        # never end in a zero byte (RBSP trailing bits), so it can be stripped.
        unit = data[begin:] if end < 0 else data[begin:end].rstrip(b"\x00")
        if unit:
            units.append(unit)
        start = end
    return units


def parse_annexb(data: bytes) -> AccessUnit:
    """Convert one Annex B access unit; SPS, PPS and delimiters are taken out of band."""
    parts: list[bytes] = []
    keyframe = False
    sps: bytes | None = None
    pps: bytes | None = None
    for unit in split_annexb(data):
        nal_type = unit[0] & 0x1F
        if nal_type == NAL_SPS:
            sps = unit
        elif nal_type == NAL_PPS:
            pps = unit
        elif nal_type == NAL_AUD:
            continue
        else:
            keyframe = keyframe or nal_type == NAL_IDR
            parts.append(len(unit).to_bytes(4, "big"))
            parts.append(unit)
    return AccessUnit(b"".join(parts), keyframe, sps, pps)


def avc_decoder_configuration(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with 4-byte lengths."""
    if len(sps) < 4 or not pps:
        raise H264FormatError("SPS too short or PPS empty")
    return b"".join(
        (
            bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
            len(sps).to_bytes(2, "big"),
            sps,
            b"\x01",
            len(pps).to_bytes(2, "big"),
            pps,
        )
    )


def _parameter_sets(record: bytes) -> tuple[int, list[bytes]]:
    if len(record) < 7 or record[0] != 1:
        raise H264FormatError("not an AVCDecoderConfigurationRecord")
    length_size = (record[4] & 0x03) + 1
    units: list[bytes] = []
    offset = 5
    for mask in (0x1F, 0xFF):
        if offset >= len(record):
            raise H264FormatError("truncated AVCDecoderConfigurationRecord")
        count = record[offset] & mask
        offset += 1
        for _ in range(count):
            length = int.from_bytes(record[offset : offset + 2], "big")
            offset += 2
            if offset + length > len(record):
                raise H264FormatError("truncated parameter set")
            units.append(record[offset : offset + length])
            offset += length
    return length_size, units


class AvccToAnnexB:
    """AVCC access units of one track into Annex B, parameter sets before keyframes."""

    def __init__(self, avc_decoder_configuration: bytes) -> None:
        self._length_size, units = _parameter_sets(avc_decoder_configuration)
        self._parameter_sets = b"".join(_START_CODE + unit for unit in units)

    def convert(self, data: bytes, keyframe: bool) -> bytes:
        size = len(data)
        length_size = self._length_size
        parts: list[bytes] = []
        in_band_sps = False
        offset = 0
        while offset < size:
            if offset + length_size > size:
                raise H264FormatError("truncated NAL unit length")
            length = int.from_bytes(data[offset : offset + length_size], "big")
            offset += length_size
            end = offset + length
            if length == 0 or end > size:
                raise H264FormatError("NAL unit length runs past the access unit")
            nal_type = data[offset] & 0x1F
            if nal_type != NAL_AUD:
                in_band_sps = in_band_sps or nal_type == NAL_SPS
                parts.append(_START_CODE)
                parts.append(data[offset:end])
            offset = end
        if keyframe and not in_band_sps:
            # In-band parameter sets win: they are newer than the record if they differ.
            parts.insert(0, self._parameter_sets)
        return b"".join(parts)
