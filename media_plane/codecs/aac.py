"""AAC: the AudioSpecificConfig read once, and raw frames framed as ADTS. Pure.

FLV and MP4 carry raw AAC frames with the AudioSpecificConfig out of band; MPEG-TS carries
ADTS frames (ISO/IEC 14496-3, 1.A.2), each with a 7-byte header built from that config.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_plane.codecs._bits import BitReader
from media_plane.codecs.errors import CodecError

__all__ = ["AdtsFramer", "AudioSpecificConfig", "parse_audio_specific_config"]

SAMPLE_RATES = (
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
)  # fmt: skip
_EXPLICIT_RATE = 15
_SBR, _PS = 5, 29


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    #: As signalled: 5 (SBR) or 29 (PS) with explicit signalling, else the AAC core's.
    object_type: int
    #: The decoder's output rate: with explicit SBR/PS the extension rate, as FFmpeg
    #: reports it.
    sample_rate: int
    #: The channel configuration; 0 means the layout is in a program config element.
    channels: int
    #: The AAC core under SBR/PS (the same as `object_type` without them): what ADTS
    #: carries, with the core's own rate.
    core_object_type: int
    core_sample_rate: int


def _object_type(bits: BitReader) -> int:
    value = bits.bits(5)
    return 32 + bits.bits(6) if value == 31 else value


def _sample_rate(bits: BitReader) -> int:
    index = bits.bits(4)
    if index == _EXPLICIT_RATE:
        rate = bits.bits(24)
        if not rate:
            raise CodecError("AAC sample rate 0")
        return rate
    if index >= len(SAMPLE_RATES):
        raise CodecError(f"reserved AAC sampling frequency index {index}")
    return SAMPLE_RATES[index]


def parse_audio_specific_config(config: bytes) -> AudioSpecificConfig:
    """An AudioSpecificConfig (ISO/IEC 14496-3, 1.6.2.1)."""
    bits = BitReader(config)
    object_type = _object_type(bits)
    if object_type == 0:
        raise CodecError("invalid AAC object type 0")
    core_rate = _sample_rate(bits)
    channels = bits.bits(4)
    if object_type in (_SBR, _PS):
        # Explicit signalling: the extension (output) rate, then the core's object type.
        return AudioSpecificConfig(
            object_type, _sample_rate(bits), channels, _object_type(bits), core_rate
        )
    return AudioSpecificConfig(object_type, core_rate, channels, object_type, core_rate)


class AdtsFramer:
    """Raw AAC frames of one track into ADTS frames (ISO/IEC 14496-3, 1.A.2)."""

    def __init__(self, audio_specific_config: bytes) -> None:
        config = parse_audio_specific_config(audio_specific_config)
        # ADTS carries the AAC core and its rate; the decoder finds SBR/PS in the payload.
        if not 1 <= config.core_object_type <= 4:
            raise CodecError(f"AAC object type {config.core_object_type} cannot be carried in ADTS")
        if config.core_sample_rate not in SAMPLE_RATES:
            raise CodecError(f"AAC sample rate {config.core_sample_rate} has no ADTS index")
        if config.channels == 0:
            raise CodecError("AAC channel configuration 0 (PCE) is not supported in ADTS")
        profile = config.core_object_type - 1
        frequency_index = SAMPLE_RATES.index(config.core_sample_rate)
        channels = config.channels
        # Fixed header and the constant bits of the variable header; the frame length
        # (13 bits spanning bytes 3..5) is or-ed in per frame.
        self._b2 = (profile << 6) | (frequency_index << 2) | (channels >> 2)
        self._b3 = (channels & 0x03) << 6

    def frame(self, data: bytes) -> bytes:
        length = len(data) + 7
        if length > 0x1FFF:
            raise CodecError("AAC frame too large for ADTS")
        header = bytes(
            (
                0xFF,
                0xF1,  # MPEG-4, layer 0, no CRC
                self._b2,
                self._b3 | (length >> 11),
                (length >> 3) & 0xFF,
                ((length & 0x07) << 5) | 0x1F,  # buffer fullness 0x7FF: variable rate
                0xFC,  # one raw data block
            )
        )
        return header + data
