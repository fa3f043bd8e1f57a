"""FLV audio and video tag payloads, as RTMP carries them, to the engine's media types.

Video: H.264 (legacy codec id 7, and enhanced RTMP 'avc1') and HEVC (enhanced RTMP
'hvc1', and the widespread non-standard legacy codec id 12 with the AVC layout).
Audio: AAC (legacy sound format 10, and enhanced RTMP 'mp4a') and Opus (enhanced RTMP
'Opus'). Video payloads stay length-prefixed (AVCC/HVCC) as the engine wants them.

Timestamps: FLV milliseconds become 90 kHz ticks by multiplying by 90; a video frame's
pts is its dts plus the signed 24-bit composition time offset. Sequence headers become
`VideoConfig` / `AudioConfig`; command frames, end-of-sequence markers and metadata
become None. Anything malformed raises MediaFormatError, and a codec the engine cannot
carry raises UnsupportedCodecError. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from media_plane.codecs import aac
from media_plane.codecs.errors import CodecError
from media_plane.codecs.h264 import avc_config_dimensions
from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp.errors import MediaFormatError, UnsupportedCodecError

__all__ = [
    "AudioConfig",
    "FlvUnit",
    "VideoConfig",
    "parse_audio",
    "parse_audio_specific_config",
    "parse_video",
    "split_aggregate",
]

_TICKS_PER_MS = 90
_COMMAND_FRAME = 5
_LEGACY_VIDEO = {7: Codec.H264, 12: Codec.HEVC}
_ENHANCED_VIDEO = {b"avc1": Codec.H264, b"hvc1": Codec.HEVC}
_ENHANCED_AUDIO = {b"mp4a": Codec.AAC, b"Opus": Codec.OPUS}


@dataclass(frozen=True, slots=True)
class VideoConfig:
    track: VideoTrack


@dataclass(frozen=True, slots=True)
class AudioConfig:
    track: AudioTrack


FlvUnit: TypeAlias = VideoConfig | AudioConfig | MediaPacket | None


def _si24(data: bytes, at: int) -> int:
    value = (data[at] << 16) | (data[at + 1] << 8) | data[at + 2]
    return value - 0x1000000 if value & 0x800000 else value


def _frame(data: bytes, dts: int, cts_ms: int, keyframe: bool) -> MediaPacket | None:
    if not data:
        return None  # some encoders send empty frames; there is nothing to play
    return MediaPacket(TrackKind.VIDEO, dts, dts + cts_ms * _TICKS_PER_MS, data, keyframe)


def _video_config(codec: Codec, record: bytes) -> VideoConfig:
    if codec is Codec.H264:
        try:
            width, height = avc_config_dimensions(record)
        except CodecError as exc:
            raise MediaFormatError(str(exc)) from exc
    else:
        # HEVCDecoderConfigurationRecord: 23 fixed bytes, version 1. The picture size
        # would need an HEVC SPS parser; it is informational, so it stays 0.
        if len(record) < 23 or record[0] != 1:
            raise MediaFormatError("invalid HEVCDecoderConfigurationRecord")
        width = height = 0
    return VideoConfig(VideoTrack(codec, record, width, height))


def parse_video(payload: bytes, timestamp_ms: int) -> FlvUnit:
    if not payload:
        raise MediaFormatError("empty video tag")
    first = payload[0]
    if first & 0x80:
        return _parse_enhanced_video(payload, timestamp_ms)
    frame_type = first >> 4
    if frame_type == _COMMAND_FRAME:
        return None
    codec = _LEGACY_VIDEO.get(first & 0x0F)
    if codec is None:
        raise UnsupportedCodecError(f"unsupported video codec id {first & 0x0F}")
    if len(payload) < 5:
        raise MediaFormatError("short AVC video tag")
    packet_type = payload[1]
    if packet_type == 1:
        return _frame(payload[5:], timestamp_ms * _TICKS_PER_MS, _si24(payload, 2), frame_type == 1)
    if packet_type == 0:
        return _video_config(codec, payload[5:])
    if packet_type == 2:
        return None  # end of sequence
    raise MediaFormatError(f"invalid AVC packet type {packet_type}")


def _parse_enhanced_video(payload: bytes, timestamp_ms: int) -> FlvUnit:
    frame_type = (payload[0] >> 4) & 0x07
    packet_type = payload[0] & 0x0F
    if len(payload) < 5:
        raise MediaFormatError("short enhanced video tag")
    codec = _ENHANCED_VIDEO.get(payload[1:5])
    if codec is None:
        raise UnsupportedCodecError(f"unsupported enhanced RTMP video codec {payload[1:5]!r}")
    if packet_type == 4 or packet_type == 2:  # metadata, sequence end
        return None
    if frame_type == _COMMAND_FRAME:
        return None
    dts = timestamp_ms * _TICKS_PER_MS
    if packet_type == 1:  # coded frames with a composition time offset
        if len(payload) < 8:
            raise MediaFormatError("short enhanced coded frame")
        return _frame(payload[8:], dts, _si24(payload, 5), frame_type == 1)
    if packet_type == 3:  # coded frames, composition time offset zero
        return _frame(payload[5:], dts, 0, frame_type == 1)
    if packet_type == 0:
        return _video_config(codec, payload[5:])
    # MPEG-2 TS sequence start (AV1 only), multitrack, ModEx: none of them carried.
    raise UnsupportedCodecError(f"unsupported enhanced RTMP video packet type {packet_type}")


def parse_audio(payload: bytes, timestamp_ms: int) -> FlvUnit:
    if not payload:
        raise MediaFormatError("empty audio tag")
    sound_format = payload[0] >> 4
    if sound_format == 9:
        return _parse_enhanced_audio(payload, timestamp_ms)
    if sound_format != 10:
        raise UnsupportedCodecError(f"unsupported audio format {sound_format}")
    if len(payload) < 2:
        raise MediaFormatError("short AAC audio tag")
    packet_type = payload[1]
    if packet_type == 1:
        return _audio_frame(payload[2:], timestamp_ms)
    if packet_type == 0:
        return AudioConfig(parse_audio_specific_config(payload[2:]))
    raise MediaFormatError(f"invalid AAC packet type {packet_type}")


def _audio_frame(data: bytes, timestamp_ms: int) -> MediaPacket | None:
    if not data:
        return None
    ts = timestamp_ms * _TICKS_PER_MS
    return MediaPacket(TrackKind.AUDIO, ts, ts, data, keyframe=True)


def _parse_enhanced_audio(payload: bytes, timestamp_ms: int) -> FlvUnit:
    packet_type = payload[0] & 0x0F
    if len(payload) < 5:
        raise MediaFormatError("short enhanced audio tag")
    codec = _ENHANCED_AUDIO.get(payload[1:5])
    if codec is None:
        raise UnsupportedCodecError(f"unsupported enhanced RTMP audio codec {payload[1:5]!r}")
    if packet_type == 1:
        return _audio_frame(payload[5:], timestamp_ms)
    if packet_type == 0:
        if codec is Codec.AAC:
            return AudioConfig(parse_audio_specific_config(payload[5:]))
        return AudioConfig(_parse_opus_head(payload[5:]))
    if packet_type in (2, 4):  # sequence end, multichannel config
        return None
    raise UnsupportedCodecError(f"unsupported enhanced RTMP audio packet type {packet_type}")


def _parse_opus_head(head: bytes) -> AudioTrack:
    """The Opus identification header ('OpusHead', RFC 7845 section 5.1)."""
    if len(head) < 19 or head[:8] != b"OpusHead" or not head[9]:
        raise MediaFormatError("invalid OpusHead")
    # Opus always decodes at 48 kHz; the header's rate is only the original input rate.
    return AudioTrack(Codec.OPUS, b"", 48000, head[9])


def parse_audio_specific_config(config: bytes) -> AudioTrack:
    """An AAC AudioSpecificConfig as an AudioTrack, at the decoder's output rate (the
    extension rate with explicit SBR/PS signalling, as FFmpeg reports it). Channels are
    the channel configuration; 0 means the layout is in a program config element.
    """
    try:
        parsed = aac.parse_audio_specific_config(config)
    except CodecError as exc:
        raise MediaFormatError(str(exc)) from exc
    if parsed.channels > 7:
        raise MediaFormatError(f"reserved AAC channel configuration {parsed.channels}")
    return AudioTrack(Codec.AAC, bytes(config), parsed.sample_rate, parsed.channels)


def split_aggregate(payload: bytes, timestamp_ms: int) -> list[tuple[int, int, bytes]]:
    """The sub-messages of an RTMP aggregate message as (type id, timestamp ms, payload).

    The payload is a run of FLV tags (11-byte header, body, 4-byte back pointer); their
    timestamps are shifted so that the first lands on the aggregate's own timestamp.
    """
    out: list[tuple[int, int, bytes]] = []
    pos, end = 0, len(payload)
    first_ts: int | None = None
    while pos < end:
        if pos + 11 > end:
            raise MediaFormatError("truncated tag header in aggregate message")
        size = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(payload[pos + 4 : pos + 7], "big") | (payload[pos + 7] << 24)
        body_end = pos + 11 + size
        if body_end > end:
            raise MediaFormatError("truncated tag in aggregate message")
        if first_ts is None:
            first_ts = ts
        out.append(
            (payload[pos] & 0x1F, timestamp_ms + ts - first_ts, payload[pos + 11 : body_end])
        )
        pos = body_end + 4  # the back pointer; the last one may be missing
    return out
