"""The engine's one internal representation of tracks and encoded packets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Every timestamp inside the engine counts ticks of a 90 kHz clock (MPEG-TS and RTP video
#: use it natively; FLV milliseconds convert exactly by multiplying by 90).
TIMEBASE_HZ = 90_000


class TrackKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(StrEnum):
    H264 = "h264"
    HEVC = "hevc"
    VP8 = "vp8"
    AAC = "aac"
    OPUS = "opus"


@dataclass(frozen=True, slots=True)
class VideoTrack:
    codec: Codec
    #: Decoder configuration exactly as the codec's MP4 sample entry carries it
    #: (AVCDecoderConfigurationRecord for H.264, HEVCDecoderConfigurationRecord for HEVC).
    extradata: bytes
    width: int = 0
    height: int = 0

    @property
    def kind(self) -> TrackKind:
        return TrackKind.VIDEO


@dataclass(frozen=True, slots=True)
class AudioTrack:
    codec: Codec
    #: AudioSpecificConfig for AAC; empty for Opus.
    extradata: bytes
    sample_rate: int
    channels: int

    @property
    def kind(self) -> TrackKind:
        return TrackKind.AUDIO


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One encoded access unit (video) or frame (audio).

    Video payloads are in length-prefixed (AVCC/HVCC, 4-byte lengths) form, as FLV and MP4
    carry them; packagers that need Annex B convert at their edge.
    """

    kind: TrackKind
    dts: int
    pts: int
    data: bytes
    keyframe: bool = False
