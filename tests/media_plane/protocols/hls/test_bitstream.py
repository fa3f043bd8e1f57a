"""AVCC to Annex B and raw AAC to ADTS."""

from __future__ import annotations

import pytest

from media_plane.protocols.hls._bitstream import (
    AdtsFramer,
    AnnexBConverter,
    BitstreamError,
    parse_avc_decoder_configuration,
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
    with pytest.raises(BitstreamError):
        parse_avc_decoder_configuration(record)


def test_keyframe_gets_delimiter_and_parameter_sets_first() -> None:
    converter = AnnexBConverter(_record())
    out = converter.convert(_avcc(SEI, IDR), keyframe=True)
    assert _nals(out) == [AUD, SPS, PPS, SEI, IDR]


def test_non_keyframe_gets_only_the_delimiter() -> None:
    converter = AnnexBConverter(_record())
    assert _nals(converter.convert(_avcc(SLICE), keyframe=False)) == [AUD, SLICE]


def test_in_band_parameter_sets_are_not_duplicated() -> None:
    converter = AnnexBConverter(_record())
    out = converter.convert(_avcc(SPS, PPS, IDR), keyframe=True)
    assert _nals(out) == [AUD, SPS, PPS, IDR]


def test_source_delimiter_is_replaced_not_repeated() -> None:
    converter = AnnexBConverter(_record())
    assert _nals(converter.convert(_avcc(AUD, SLICE), keyframe=False)) == [AUD, SLICE]


def test_two_byte_lengths_are_honoured() -> None:
    converter = AnnexBConverter(_record(length_size=2))
    out = converter.convert(_avcc(SLICE, SLICE, length_size=2), keyframe=False)
    assert _nals(out) == [AUD, SLICE, SLICE]


@pytest.mark.parametrize(
    "payload",
    [b"\x00\x00\x00", b"\x00\x00\x00\x09" + SLICE, b"\x00\x00\x00\x00"],
    ids=["short-length", "overrun", "zero-length"],
)
def test_malformed_access_units_are_refused(payload: bytes) -> None:
    with pytest.raises(BitstreamError):
        AnnexBConverter(_record()).convert(payload, keyframe=False)


def _adts_fields(frame: bytes) -> dict[str, int]:
    bits = int.from_bytes(frame[:7], "big")

    def field(offset: int, width: int) -> int:
        return (bits >> (56 - offset - width)) & ((1 << width) - 1)

    return {
        "syncword": field(0, 12),
        "id": field(12, 1),
        "layer": field(13, 2),
        "protection_absent": field(15, 1),
        "profile": field(16, 2),
        "frequency_index": field(18, 4),
        "channels": field(23, 3),
        "frame_length": field(30, 13),
        "buffer_fullness": field(43, 11),
        "raw_blocks": field(54, 2),
    }


def test_adts_header_carries_the_audio_specific_config() -> None:
    # AAC-LC (2), 48 kHz (index 3), stereo (2).
    framer = AdtsFramer(bytes.fromhex("1190"))
    payload = b"\x21" * 300
    frame = framer.frame(payload)
    assert frame[7:] == payload
    assert _adts_fields(frame) == {
        "syncword": 0xFFF,
        "id": 0,
        "layer": 0,
        "protection_absent": 1,
        "profile": 1,
        "frequency_index": 3,
        "channels": 2,
        "frame_length": 307,
        "buffer_fullness": 0x7FF,
        "raw_blocks": 0,
    }


def test_he_aac_config_is_framed_as_its_aac_core() -> None:
    # HE-AAC explicit: AOT 5, core 24 kHz (6), stereo, extension 48 kHz (3), then AOT 2.
    framer = AdtsFramer(bytes.fromhex("2b118800"))
    fields = _adts_fields(framer.frame(b"\x00" * 10))
    assert fields["profile"] == 1
    assert fields["frequency_index"] == 6
    assert fields["channels"] == 2


def test_explicit_sample_rate_maps_to_its_index() -> None:
    # AOT 2, frequency index 15 followed by 44100 in 24 bits, mono: 37 bits in 5 bytes.
    bits = (2 << 35) | (15 << 31) | (44100 << 7) | (1 << 3)
    framer = AdtsFramer(bits.to_bytes(5, "big"))
    fields = _adts_fields(framer.frame(b"\x00"))
    assert fields["frequency_index"] == 4
    assert fields["channels"] == 1


@pytest.mark.parametrize(
    "config",
    [b"", bytes.fromhex("1180"), bytes.fromhex("3990")],
    ids=["empty", "channel-config-0", "object-type-7"],
)
def test_unframeable_configs_are_refused(config: bytes) -> None:
    with pytest.raises(BitstreamError):
        AdtsFramer(config)


def test_oversized_aac_frame_is_refused() -> None:
    with pytest.raises(BitstreamError):
        AdtsFramer(bytes.fromhex("1190")).frame(b"\x00" * 8192)
