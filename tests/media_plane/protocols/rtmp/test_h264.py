"""Picture sizes from SPS units x264 wrote (via ffmpeg) for awkward formats."""

from __future__ import annotations

import pytest

from media_plane.protocols.rtmp.errors import MediaFormatError
from media_plane.protocols.rtmp.h264 import avc_config_dimensions, sps_dimensions

SPS = {
    # Main profile, no cropping.
    (160, 96): "674d400ceca146d80880000003008000000f078a14cb",
    # High profile; 1088 rows cropped to 1080.
    (1920, 1080): "67640028acd940780227e5c044000003000400000300c83c60c658",
    # High 4:4:4 (chroma_format_idc 3): crop units of one sample.
    (854, 480): "67f4001e919b281b07bc5f80880000030008000003019078b16cb0",
    # Interlaced (frame_mbs_only_flag 0): heights count field macroblock pairs.
    (720, 576): "6764001eacd940b424d8088000000300800000190f8a14cb",
    # Monochrome (chroma_format_idc 0), odd sizes cropped in luma samples.
    (642, 362): "6764001ef3650290bf8f9f016c800000030080000019078b16cb",
    # High 4:2:2 (chroma_format_idc 2): vertical crop unit of one row.
    (636, 358): "677a001ebcd940a02fee2f011000000300100000030320f162d960",
    (1280, 720): "6764001facd9405005bb011000000300100000030300f183196000",
}


def avcc(sps: bytes, *, sps_count: int = 1) -> bytes:
    pps = bytes.fromhex("68ebe3cb22c0")
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE0 | sps_count])
        + len(sps).to_bytes(2, "big")
        + sps
        + bytes([1])
        + len(pps).to_bytes(2, "big")
        + pps
    )


@pytest.mark.parametrize(("size", "sps"), SPS.items())
def test_the_sps_gives_the_picture_size(size: tuple[int, int], sps: str) -> None:
    assert sps_dimensions(bytes.fromhex(sps)) == size
    assert avc_config_dimensions(avcc(bytes.fromhex(sps))) == size


@pytest.mark.parametrize(
    "sps",
    [
        "",  # nothing
        "68ebe3cb22c0",  # a PPS, not an SPS
        "6764001f",  # cut right after the level
        "67640028ac",  # cut in the middle of the exp-Golomb codes
        "676400280000000000000000",  # a run of zero bits no exp-Golomb code has
    ],
)
def test_an_sps_that_cannot_be_followed_gives_zero(sps: str) -> None:
    assert sps_dimensions(bytes.fromhex(sps)) == (0, 0)


def test_a_record_without_sps_gives_zero() -> None:
    assert avc_config_dimensions(bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0])) == (0, 0)


@pytest.mark.parametrize(
    "record",
    [
        b"",
        bytes([0, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4]),  # version 0
        bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 40]) + b"\x67\x64",  # SPS cut short
        bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1]),  # SPS count, then nothing
    ],
)
def test_a_broken_record_is_a_media_format_error(record: bytes) -> None:
    with pytest.raises(MediaFormatError):
        avc_config_dimensions(record)
