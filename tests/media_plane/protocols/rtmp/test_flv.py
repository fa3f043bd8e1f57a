from __future__ import annotations

import pytest

from media_plane.media import Codec, MediaPacket, TrackKind
from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.flv import (
    AudioConfig,
    VideoConfig,
    parse_audio,
    parse_audio_specific_config,
    parse_video,
)
from media_plane.protocols.rtmp.h264 import sps_dimensions

# An SPS from x264 for 1280x720 High profile, and one for 1920x1080 (cropped from 1088).
SPS_720P = bytes.fromhex("6764001facd9405005bb011000000300100000030300f183196000")
SPS_1080P = bytes.fromhex("67640028acd940780227e5c05a808080a0000003002000000781e3064b")


def avcc(sps: bytes) -> bytes:
    pps = bytes.fromhex("68ebe3cb22c0")
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + bytes([1])
        + len(pps).to_bytes(2, "big")
        + pps
    )


@pytest.mark.parametrize(("sps", "size"), [(SPS_720P, (1280, 720)), (SPS_1080P, (1920, 1080))])
def test_sps_gives_the_picture_size(sps: bytes, size: tuple[int, int]) -> None:
    assert sps_dimensions(sps) == size


def test_avc_sequence_header_becomes_a_video_track() -> None:
    record = avcc(SPS_720P)
    parsed = parse_video(bytes([0x17, 0, 0, 0, 0]) + record, 0)
    assert isinstance(parsed, VideoConfig)
    assert parsed.track.codec is Codec.H264
    assert parsed.track.extradata == record
    assert (parsed.track.width, parsed.track.height) == (1280, 720)


def test_avc_frames_carry_dts_pts_and_keyframe_in_90khz() -> None:
    nalus = b"\x00\x00\x00\x02\x65\x88"
    key = parse_video(bytes([0x17, 1, 0, 0, 66]) + nalus, 1000)  # cts 66 ms
    assert key == MediaPacket(TrackKind.VIDEO, 90_000, 90_000 + 66 * 90, nalus, keyframe=True)
    inter = parse_video(bytes([0x27, 1, 0xFF, 0xFF, 0xFF]) + nalus, 1033)  # cts -1 ms
    assert isinstance(inter, MediaPacket)
    assert not inter.keyframe
    assert inter.pts == inter.dts - 90


def test_enhanced_rtmp_hevc_is_passed_through() -> None:
    config = parse_video(b"\x90hvc1" + b"\x01hevc-config", 0)
    assert isinstance(config, VideoConfig) and config.track.codec is Codec.HEVC
    frame = parse_video(b"\x93hvc1" + b"frame", 40)
    assert isinstance(frame, MediaPacket) and frame.keyframe and frame.pts == frame.dts


def test_aac_sequence_header_and_frames() -> None:
    config = parse_audio(b"\xaf\x00\x11\x90", 0)  # AAC-LC 48 kHz stereo
    assert isinstance(config, AudioConfig)
    assert (config.track.sample_rate, config.track.channels) == (48000, 2)
    frame = parse_audio(b"\xaf\x01abc", 21)
    assert frame == MediaPacket(TrackKind.AUDIO, 21 * 90, 21 * 90, b"abc", keyframe=True)
    assert parse_audio_specific_config(b"\x12\x10").sample_rate == 44100


@pytest.mark.parametrize(
    "payload",
    [b"\x17", b"\x12\x00\x00\x00\x00", b"\x80\x00", b"\x90vp09xxxx", b"\x17\x00\x00\x00\x00\x02"],
)
def test_malformed_or_unsupported_video_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        parse_video(payload, 0)


@pytest.mark.parametrize("payload", [b"\xaf", b"\x2f\x01mp3", b"\xaf\x00\x17", b"\xaf\x00\x07\xf0"])
def test_malformed_or_unsupported_audio_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        parse_audio(payload, 0)
