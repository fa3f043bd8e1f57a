"""Just enough H.264 parsing to learn a stream's picture size from its SPS. Pure.

The size is informational (the decoder configuration travels whole as extradata), so an
SPS this parser cannot follow yields (0, 0) instead of failing the publish; only an
AVCDecoderConfigurationRecord whose own framing is broken is an error.
"""

from __future__ import annotations

from media_plane.protocols.rtmp.errors import MediaFormatError

__all__ = ["avc_config_dimensions", "sps_dimensions"]

_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_DIMENSION = 16_384


class _SpsError(Exception):
    """The SPS ran out or holds values no encoder produces."""


class _Bits:
    __slots__ = ("data", "pos", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.size = len(data) * 8

    def bit(self) -> int:
        pos = self.pos
        if pos >= self.size:
            raise _SpsError("truncated SPS")
        self.pos = pos + 1
        return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise _SpsError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def _parse_sps(sps: bytes) -> tuple[int, int]:
    # Emulation prevention: 00 00 03 carries 00 00 (a plain replace is exact here,
    # because the zero count restarts after each removed 03).
    bits = _Bits(sps[1:].replace(b"\x00\x00\x03", b"\x00\x00"))
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc > 3:
            raise _SpsError("bad chroma_format_idc")
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
            raise _SpsError("bad num_ref_frames_in_pic_order_cnt_cycle")
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
        raise _SpsError("implausible picture size")
    return width, height


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels from an SPS NAL unit (with its one-byte NAL header),
    or (0, 0) when the SPS cannot be followed."""
    if len(sps) < 4 or sps[0] & 0x1F != 7:
        return 0, 0
    try:
        return _parse_sps(sps)
    except _SpsError:
        return 0, 0


def avc_config_dimensions(record: bytes) -> tuple[int, int]:
    """(width, height) from an AVCDecoderConfigurationRecord's first SPS; (0, 0) when it
    has none or it cannot be followed. Broken record framing is a MediaFormatError."""
    if len(record) < 7 or record[0] != 1:
        raise MediaFormatError("invalid AVCDecoderConfigurationRecord")
    if record[5] & 0x1F == 0:
        return 0, 0
    length = int.from_bytes(record[6:8], "big")
    sps = record[8 : 8 + length]
    if len(record) < 8 or len(sps) != length or not sps:
        raise MediaFormatError("truncated SPS in AVCDecoderConfigurationRecord")
    return sps_dimensions(sps)
