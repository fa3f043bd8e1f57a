"""AAC: the AudioSpecificConfig and raw frames framed as ADTS."""

from __future__ import annotations

import pytest

from media_plane.codecs.aac import AdtsFramer
from media_plane.codecs.errors import CodecError


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
    with pytest.raises(CodecError):
        AdtsFramer(config)


def test_oversized_aac_frame_is_refused() -> None:
    with pytest.raises(CodecError):
        AdtsFramer(bytes.fromhex("1190")).frame(b"\x00" * 8192)
