"""FLV audio and video tag payloads (as RTMP carries them) to the engine's media types.

Supports H.264 (legacy and enhanced RTMP 'avc1'), HEVC over enhanced RTMP ('hvc1',
passed through as-is) and AAC. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.h264 import avcc_dimensions

_MS_TO_TICKS = 90  # 90 kHz engine clock / 1000 ms
_AAC_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


@dataclass(frozen=True, slots=True)
class VideoConfig:
    track: VideoTrack


@dataclass(frozen=True, slots=True)
class AudioConfig:
    track: AudioTrack


Parsed = VideoConfig | AudioConfig | MediaPacket | None


def _si24(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    return value - (1 << 24) if value & 0x800000 else value


def parse_video(payload: bytes, timestamp_ms: int) -> Parsed:
    if len(payload) < 2:
        raise RtmpProtocolError("short video tag")
    first = payload[0]
    if first & 0x80:
        return _parse_enhanced_video(payload, timestamp_ms)
    frame_type, codec_id = first >> 4, first & 0x0F
    if codec_id != 7:
        raise RtmpProtocolError(f"unsupported video codec id {codec_id}")
    if len(payload) < 5:
        raise RtmpProtocolError("short AVC video tag")
    packet_type = payload[1]
    if packet_type == 0:
        record = payload[5:]
        width, height = avcc_dimensions(record)
        return VideoConfig(VideoTrack(Codec.H264, record, width, height))
    if packet_type == 1:
        cts = _si24(payload[2:5])
        dts = timestamp_ms * _MS_TO_TICKS
        return MediaPacket(
            TrackKind.VIDEO, dts, dts + cts * _MS_TO_TICKS, payload[5:], keyframe=frame_type == 1
        )
    return None  # end of sequence


def _parse_enhanced_video(payload: bytes, timestamp_ms: int) -> Parsed:
    if len(payload) < 5:
        raise RtmpProtocolError("short enhanced video tag")
    frame_type = (payload[0] >> 4) & 0x07
    packet_type = payload[0] & 0x0F
    fourcc = payload[1:5]
    codec = {b"avc1": Codec.H264, b"hvc1": Codec.HEVC}.get(fourcc)
    if codec is None:
        raise RtmpProtocolError(f"unsupported enhanced RTMP codec {fourcc!r}")
    body = payload[5:]
    if packet_type == 0:  # sequence start
        width, height = avcc_dimensions(body) if codec is Codec.H264 else (0, 0)
        return VideoConfig(VideoTrack(codec, body, width, height))
    dts = timestamp_ms * _MS_TO_TICKS
    if packet_type == 1:  # coded frames with a composition time
        if len(body) < 3:
            raise RtmpProtocolError("short enhanced coded frame")
        cts = _si24(body[:3])
        return MediaPacket(
            TrackKind.VIDEO, dts, dts + cts * _MS_TO_TICKS, body[3:], keyframe=frame_type == 1
        )
    if packet_type == 3:  # coded frames, composition time zero
        return MediaPacket(TrackKind.VIDEO, dts, dts, body, keyframe=frame_type == 1)
    return None  # sequence end, metadata, multitrack: nothing to play


def parse_audio(payload: bytes, timestamp_ms: int) -> Parsed:
    if len(payload) < 2:
        raise RtmpProtocolError("short audio tag")
    sound_format = payload[0] >> 4
    if sound_format != 10:
        raise RtmpProtocolError(f"unsupported audio format {sound_format}")
    if payload[1] == 0:
        return AudioConfig(parse_audio_specific_config(payload[2:]))
    ts = timestamp_ms * _MS_TO_TICKS
    return MediaPacket(TrackKind.AUDIO, ts, ts, payload[2:], keyframe=True)


def parse_audio_specific_config(config: bytes) -> AudioTrack:
    if len(config) < 2:
        raise RtmpProtocolError("short AudioSpecificConfig")
    bits = int.from_bytes(config[:5].ljust(5, b"\0"), "big")
    object_type = bits >> 35
    index = (bits >> 31) & 0x0F
    shift = 27
    if index == 15:
        rate = (bits >> 7) & 0xFFFFFF
        shift = 3
    elif index < len(_AAC_RATES):
        rate = _AAC_RATES[index]
    else:
        raise RtmpProtocolError(f"invalid AAC sampling frequency index {index}")
    channels = (bits >> shift) & 0x0F
    if object_type == 0:
        raise RtmpProtocolError("invalid AAC object type 0")
    return AudioTrack(Codec.AAC, bytes(config), rate, channels)
