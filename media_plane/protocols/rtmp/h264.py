"""Just enough H.264 parsing to learn a stream's picture size from its SPS. Pure."""

from __future__ import annotations

from media_plane.protocols.rtmp.errors import RtmpProtocolError

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Bits:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise RtmpProtocolError("truncated SPS")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise RtmpProtocolError("bad exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _unescape(nal: bytes) -> bytes:
    """Drops emulation-prevention bytes (00 00 03 -> 00 00)."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def sps_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels from an SPS NAL unit (with its one-byte NAL header)."""
    bits = _Bits(_unescape(sps[1:]))
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            bits.bit()
        bits.ue()
        bits.ue()
        bits.bit()
        if bits.bit():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        for _ in range(min(bits.ue(), 255)):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()
    bits.bit()
    crop = (0, 0, 0, 0)
    if bits.bit():
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    sub_width = 1 if chroma_format_idc in (0, 3) else 2
    sub_height = 2 if chroma_format_idc == 1 else 1
    crop_x = sub_width if chroma_format_idc else 1
    crop_y = (2 - frame_mbs_only) * (sub_height if chroma_format_idc else 1)
    width = width_mbs * 16 - (crop[0] + crop[1]) * crop_x
    height = (2 - frame_mbs_only) * height_units * 16 - (crop[2] + crop[3]) * crop_y
    return width, height


def avcc_dimensions(record: bytes) -> tuple[int, int]:
    """(width, height) from an AVCDecoderConfigurationRecord; (0, 0) if it has no SPS."""
    if len(record) < 8 or record[0] != 1:
        raise RtmpProtocolError("invalid AVCDecoderConfigurationRecord")
    count = record[5] & 0x1F
    if count == 0:
        return 0, 0
    length = int.from_bytes(record[6:8], "big")
    sps = record[8 : 8 + length]
    if len(sps) != length or not sps:
        raise RtmpProtocolError("truncated SPS in AVCDecoderConfigurationRecord")
    return sps_dimensions(sps)
