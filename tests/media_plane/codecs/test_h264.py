"""H.264: decoder configuration records, AVCC <-> Annex B, and picture sizes from SPS
units x264 wrote (via ffmpeg) for awkward formats."""

from __future__ import annotations

import pytest

from media_plane.codecs.errors import CodecError
from media_plane.codecs.h264 import (
    AnnexBConverter,
    avc_config_dimensions,
    avc_decoder_configuration,
    parse_annexb,
    parse_avc_decoder_configuration,
    split_annexb,
    sps_dimensions,
)

SPS = bytes.fromhex("6742c01e d9 00 a0 47 fe c8".replace(" ", ""))
PPS = bytes.fromhex("68ce3c80")
SEI = bytes.fromhex("0605ffff")
IDR = bytes.fromhex("65888400ff")
SLICE = bytes.fromhex("419a0011")
AUD = bytes.fromhex("09f0")
START = b"\x00\x00\x00\x01"


def _record(length_size: int = 4, sps: list[bytes] | None = None) -> bytes:
    sets = [SPS] if sps is None else sps
    out = bytearray([1, 0x42, 0xC0, 0x1E, 0xFC | (length_size - 1), 0xE0 | len(sets)])
    for nal in sets:
        out += len(nal).to_bytes(2, "big") + nal
    out += bytes([1]) + len(PPS).to_bytes(2, "big") + PPS
    return bytes(out)


def _avcc(*nals: bytes, length_size: int = 4) -> bytes:
    return b"".join(len(nal).to_bytes(length_size, "big") + nal for nal in nals)


def _nals(annexb: bytes) -> list[bytes]:
    assert annexb.startswith(START)
    return annexb.split(START)[1:]


def test_parse_record_reads_parameter_sets_and_length_size() -> None:
    config = parse_avc_decoder_configuration(_record(length_size=2))
    assert config.nal_length_size == 2
    assert config.sps == (SPS,)
    assert config.pps == (PPS,)


@pytest.mark.parametrize(
    "record",
    [b"", b"\x00" * 10, _record()[:-2], _record(sps=[])],
    ids=["empty", "wrong-version", "truncated", "no-sps"],
)
def test_parse_record_refuses_malformed_records(record: bytes) -> None:
    with pytest.raises(CodecError):
        parse_avc_decoder_configuration(record)


def test_keyframe_gets_delimiter_and_parameter_sets_first() -> None:
    converter = AnnexBConverter(_record(), access_unit_delimiter=True)
    out = converter.convert(_avcc(SEI, IDR), keyframe=True)
    assert _nals(out) == [AUD, SPS, PPS, SEI, IDR]


def test_non_keyframe_gets_only_the_delimiter() -> None:
    converter = AnnexBConverter(_record(), access_unit_delimiter=True)
    assert _nals(converter.convert(_avcc(SLICE), keyframe=False)) == [AUD, SLICE]


def test_in_band_parameter_sets_are_not_duplicated() -> None:
    converter = AnnexBConverter(_record(), access_unit_delimiter=True)
    out = converter.convert(_avcc(SPS, PPS, IDR), keyframe=True)
    assert _nals(out) == [AUD, SPS, PPS, IDR]


def test_source_delimiter_is_replaced_not_repeated() -> None:
    converter = AnnexBConverter(_record(), access_unit_delimiter=True)
    assert _nals(converter.convert(_avcc(AUD, SLICE), keyframe=False)) == [AUD, SLICE]


def test_two_byte_lengths_are_honoured() -> None:
    converter = AnnexBConverter(_record(length_size=2), access_unit_delimiter=True)
    out = converter.convert(_avcc(SLICE, SLICE, length_size=2), keyframe=False)
    assert _nals(out) == [AUD, SLICE, SLICE]


@pytest.mark.parametrize(
    "payload",
    [b"\x00\x00\x00", b"\x00\x00\x00\x09" + SLICE, b"\x00\x00\x00\x00"],
    ids=["short-length", "overrun", "zero-length"],
)
def test_malformed_access_units_are_refused(payload: bytes) -> None:
    with pytest.raises(CodecError):
        AnnexBConverter(_record(), access_unit_delimiter=True).convert(payload, keyframe=False)


WEB_SPS = bytes.fromhex("6742c01fd9014" + "1fa10000003001000000303c8f18324")
WEB_PPS = bytes.fromhex("68cb8cb2")
WEB_IDR = b"\x65\x88\x84\x00\x33\xff"
WEB_SLICE = b"\x41\x9a\x21\x6c"


def test_annexb_access_unit_becomes_avcc_with_parameter_sets_out_of_band() -> None:
    data = b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x00\x01" + WEB_SPS + b"\x00\x00\x01" + WEB_PPS
    data += b"\x00\x00\x00\x01" + WEB_IDR
    unit = parse_annexb(data)
    assert unit.keyframe and unit.sps == WEB_SPS and unit.pps == WEB_PPS
    assert unit.avcc == len(WEB_IDR).to_bytes(4, "big") + WEB_IDR
    assert not parse_annexb(b"\x00\x00\x01" + WEB_SLICE).keyframe


def test_avcc_to_annexb_round_trips_and_puts_parameter_sets_before_keyframes() -> None:
    record = avc_decoder_configuration(WEB_SPS, WEB_PPS)
    converter = AnnexBConverter(record)
    key = converter.convert(len(WEB_IDR).to_bytes(4, "big") + WEB_IDR, keyframe=True)
    assert split_annexb(key) == [WEB_SPS, WEB_PPS, WEB_IDR]
    delta = converter.convert(len(WEB_SLICE).to_bytes(4, "big") + WEB_SLICE, keyframe=False)
    assert split_annexb(delta) == [WEB_SLICE]
    assert parse_annexb(key).avcc == len(WEB_IDR).to_bytes(4, "big") + WEB_IDR
    with pytest.raises(CodecError):
        converter.convert(b"\x00\x00\x00\x09" + WEB_SLICE, keyframe=False)


SIZES = {
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


@pytest.mark.parametrize(("size", "sps"), SIZES.items())
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
def test_a_broken_record_is_a_codec_error(record: bytes) -> None:
    with pytest.raises(CodecError):
        avc_config_dimensions(record)
