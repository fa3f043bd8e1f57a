"""H.264 between the engine's AVCC packets and Annex B, and the picture size from an SPS.
Pure.

The engine's canonical packets are AVCC (length-prefixed NAL units) with SPS and PPS out
of band in an AVCDecoderConfigurationRecord. MPEG-TS and RTP carry Annex B (start codes):
egress converts with `AnnexBConverter`, putting the parameter sets in front of every
keyframe so each segment, or a viewer joining late, decodes on its own; WHIP ingest
converts back with `parse_annexb` and builds the record from the in-band parameter sets.

FFmpeg's `h264_mp4toannexb` filter does the conversion in C, but through PyAV it needs an
input stream carrying the avcC extradata and a filter call per access unit; this
converter costs one copy of the payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_plane.codecs._bits import BitReader
from media_plane.codecs.errors import CodecError

__all__ = [
    "AccessUnit",
    "AnnexBConverter",
    "AvcDecoderConfiguration",
    "avc_config_dimensions",
    "avc_decoder_configuration",
    "parse_annexb",
    "parse_avc_decoder_configuration",
    "split_annexb",
    "sps_dimensions",
]

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
_START_CODE = b"\x00\x00\x00\x01"
#: Access unit delimiter, primary_pic_type 7 (any slice type).
_ACCESS_UNIT_DELIMITER = b"\x00\x00\x00\x01\x09\xf0"
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_DIMENSION = 16_384


@dataclass(frozen=True, slots=True)
class AvcDecoderConfiguration:
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]


def parse_avc_decoder_configuration(record: bytes) -> AvcDecoderConfiguration:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15, 5.3.3.1)."""
    if len(record) < 7 or record[0] != 1:
        raise CodecError("not an AVCDecoderConfigurationRecord")
    nal_length_size = (record[4] & 0x03) + 1
    if nal_length_size == 3:
        raise CodecError("NAL unit length size 3 is not allowed")
    offset = 5
    sets: list[list[bytes]] = [[], []]
    for index, count_mask in ((0, 0x1F), (1, 0xFF)):
        if offset >= len(record):
            raise CodecError("truncated AVCDecoderConfigurationRecord")
        count = record[offset] & count_mask
        offset += 1
        for _ in range(count):
            if offset + 2 > len(record):
                raise CodecError("truncated parameter set length")
            length = int.from_bytes(record[offset : offset + 2], "big")
            offset += 2
            if offset + length > len(record):
                raise CodecError("truncated parameter set")
            sets[index].append(record[offset : offset + length])
            offset += length
    if not sets[0] or not sets[1]:
        raise CodecError("AVCDecoderConfigurationRecord lacks SPS or PPS")
    return AvcDecoderConfiguration(nal_length_size, tuple(sets[0]), tuple(sets[1]))


def avc_decoder_configuration(sps: bytes, pps: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with 4-byte lengths."""
    if len(sps) < 4 or not pps:
        raise CodecError("SPS too short or PPS empty")
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


class AnnexBConverter:
    """AVCC access units of one track into Annex B access units, the record's parameter
    sets in front of every keyframe that carries none in band (in-band ones are newer
    than the record if they differ, so they win).

    MPEG-TS wants an access unit delimiter first (`access_unit_delimiter=True`); the
    source's own delimiters are always dropped."""

    def __init__(
        self, avc_decoder_configuration: bytes, *, access_unit_delimiter: bool = False
    ) -> None:
        config = parse_avc_decoder_configuration(avc_decoder_configuration)
        self._length_size = config.nal_length_size
        self._parameter_sets = b"".join(_START_CODE + nal for nal in config.sps + config.pps)
        self._prefix = _ACCESS_UNIT_DELIMITER if access_unit_delimiter else b""

    def convert(self, data: bytes, keyframe: bool) -> bytes:
        view = memoryview(data)
        size = len(data)
        length_size = self._length_size
        parts: list[bytes | memoryview] = [self._prefix, b""]
        has_sps = False
        offset = 0
        while offset < size:
            if offset + length_size > size:
                raise CodecError("truncated NAL unit length")
            length = int.from_bytes(view[offset : offset + length_size], "big")
            offset += length_size
            end = offset + length
            if length == 0 or end > size:
                raise CodecError("NAL unit length runs past the access unit")
            nal_type = data[offset] & 0x1F
            if nal_type != NAL_AUD:
                has_sps = has_sps or nal_type == NAL_SPS
                parts.append(_START_CODE)
                parts.append(view[offset:end])
            offset = end
        if keyframe and not has_sps:
            parts[1] = self._parameter_sets
        return b"".join(parts)


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


# -- picture size ----------------------------------------------------------------------
# The size is informational (the decoder configuration travels whole as extradata), so an
# SPS this parser cannot follow yields (0, 0) instead of failing the publish; only an
# AVCDecoderConfigurationRecord whose own framing is broken is an error.


def _skip_scaling_list(bits: BitReader, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def _parse_sps(sps: bytes) -> tuple[int, int]:
    # Emulation prevention: 00 00 03 carries 00 00 (a plain replace is exact here,
    # because the zero count restarts after each removed 03).
    bits = BitReader(sps[1:].replace(b"\x00\x00\x03", b"\x00\x00"))
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc > 3:
            raise CodecError("bad chroma_format_idc")
        if chroma_format_idc == 3 and bits.bit():  # separate_colour_plane_flag
            chroma_format_idc = 0  # ChromaArrayType 0: crop in luma samples
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.bit()  # qpprime_y_zero_transform_bypass_flag
        if bits.bit():  # seq_scaling_matrix_present_flag
            for index in range(12 if chroma_format_idc == 3 else 8):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        cycle = bits.ue()
        if cycle > 255:
            raise CodecError("bad num_ref_frames_in_pic_order_cnt_cycle")
        for _ in range(cycle):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()  # mb_adaptive_frame_field_flag
    bits.bit()  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if bits.bit():  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    if chroma_format_idc == 0:
        crop_x, crop_y = 1, 2 - frame_mbs_only
    else:
        crop_x = 1 if chroma_format_idc == 3 else 2
        crop_y = (2 - frame_mbs_only) * (2 if chroma_format_idc == 1 else 1)
    width = width_mbs * 16 - (left + right) * crop_x
    height = (2 - frame_mbs_only) * height_units * 16 - (top + bottom) * crop_y
    if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
        raise CodecError("implausible picture size")
    return width, height


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels from an SPS NAL unit (with its one-byte NAL header),
    or (0, 0) when the SPS cannot be followed."""
    if len(sps) < 4 or sps[0] & 0x1F != NAL_SPS:
        return 0, 0
    try:
        return _parse_sps(sps)
    except CodecError:
        return 0, 0


def avc_config_dimensions(record: bytes) -> tuple[int, int]:
    """(width, height) from an AVCDecoderConfigurationRecord's first SPS; (0, 0) when it
    has none or it cannot be followed. Broken record framing is a CodecError."""
    if len(record) < 7 or record[0] != 1:
        raise CodecError("invalid AVCDecoderConfigurationRecord")
    if record[5] & 0x1F == 0:
        return 0, 0
    length = int.from_bytes(record[6:8], "big")
    sps = record[8 : 8 + length]
    if len(record) < 8 or len(sps) != length or not sps:
        raise CodecError("truncated SPS in AVCDecoderConfigurationRecord")
    return sps_dimensions(sps)
