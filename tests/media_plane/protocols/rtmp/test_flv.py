from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.media import Codec, MediaPacket, TrackKind
from media_plane.protocols.rtmp.errors import (
    MediaFormatError,
    RtmpProtocolError,
    UnsupportedCodecError,
)
from media_plane.protocols.rtmp.flv import (
    AudioConfig,
    VideoConfig,
    parse_audio,
    parse_audio_specific_config,
    parse_video,
    split_aggregate,
)

# The avcC record x264 wrote for 160x96, and an HEVCDecoderConfigurationRecord shape.
AVCC = bytes.fromhex("014d400cffe10016674d400ceca146d80880000003008000000f078a14cb01000468ce3c80")
HVCC = bytes([1]) + bytes(22) + b"\x00"
NALUS = b"\x00\x00\x00\x02\x65\x88"


def test_avc_sequence_header_becomes_a_video_track() -> None:
    parsed = parse_video(bytes([0x17, 0, 0, 0, 0]) + AVCC, 0)
    assert isinstance(parsed, VideoConfig)
    assert parsed.track.codec is Codec.H264
    assert parsed.track.extradata == AVCC
    assert (parsed.track.width, parsed.track.height) == (160, 96)


def test_avc_frames_carry_dts_pts_and_keyframe_in_90khz() -> None:
    key = parse_video(bytes([0x17, 1, 0, 0, 66]) + NALUS, 1000)  # cts +66 ms
    assert key == MediaPacket(TrackKind.VIDEO, 90_000, 90_000 + 66 * 90, NALUS, keyframe=True)
    inter = parse_video(bytes([0x27, 1, 0xFF, 0xFF, 0xFF]) + NALUS, 1033)  # cts -1 ms
    assert inter == MediaPacket(TrackKind.VIDEO, 1033 * 90, 1032 * 90, NALUS, keyframe=False)
    disposable = parse_video(bytes([0x37, 1, 0, 0, 0]) + NALUS, 5)
    assert isinstance(disposable, MediaPacket) and not disposable.keyframe


def test_end_of_sequence_command_frames_and_empty_frames_carry_nothing() -> None:
    assert parse_video(bytes([0x17, 2, 0, 0, 0]), 0) is None  # end of sequence
    assert parse_video(bytes([0x57, 0]), 0) is None  # command frame (seek start)
    assert parse_video(bytes([0x17, 1, 0, 0, 0]), 0) is None  # an empty frame


def test_legacy_codec_id_12_is_hevc_in_the_avc_layout() -> None:
    config = parse_video(bytes([0x1C, 0, 0, 0, 0]) + HVCC, 0)
    assert isinstance(config, VideoConfig) and config.track.codec is Codec.HEVC
    frame = parse_video(bytes([0x2C, 1, 0, 0, 40]) + NALUS, 10)
    assert frame == MediaPacket(TrackKind.VIDEO, 900, 900 + 40 * 90, NALUS, keyframe=False)


def test_enhanced_rtmp_hevc_and_avc() -> None:
    config = parse_video(b"\x90hvc1" + HVCC, 0)
    assert isinstance(config, VideoConfig) and config.track.codec is Codec.HEVC
    assert (config.track.width, config.track.height) == (0, 0)
    with_cts = parse_video(b"\x91hvc1" + b"\x00\x00\x21" + NALUS, 40)
    assert with_cts == MediaPacket(TrackKind.VIDEO, 3600, 3600 + 33 * 90, NALUS, keyframe=True)
    without_cts = parse_video(b"\xa3hvc1" + NALUS, 40)
    assert without_cts == MediaPacket(TrackKind.VIDEO, 3600, 3600, NALUS, keyframe=False)
    avc = parse_video(b"\x90avc1" + AVCC, 0)
    assert isinstance(avc, VideoConfig) and avc.track.width == 160
    assert parse_video(b"\x92hvc1", 0) is None  # sequence end
    assert parse_video(b"\x94hvc1" + b"\x02\x00\x0acolorInfo", 0) is None  # metadata
    assert parse_video(b"\xd3hvc1\x00", 0) is None  # command frame


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", MediaFormatError),
        (b"\x17", MediaFormatError),  # AVC without its packet type and cts
        (b"\x17\x07\x00\x00\x00", MediaFormatError),  # unknown AVC packet type
        (b"\x12\x00\x00\x00\x00", UnsupportedCodecError),  # Sorenson H.263
        (b"\x80\x00", MediaFormatError),  # enhanced header cut short
        (b"\x90vp09xxxx", UnsupportedCodecError),
        (b"\x96hvc1", UnsupportedCodecError),  # multitrack
        (b"\x91hvc1\x00", MediaFormatError),  # coded frames without the cts
        (b"\x17\x00\x00\x00\x00\x02", MediaFormatError),  # avcC version 2
        (b"\x90hvc1\x01\x02", MediaFormatError),  # hvcC too short
    ],
)
def test_malformed_or_unsupported_video_raises(
    payload: bytes, error: type[RtmpProtocolError]
) -> None:
    with pytest.raises(error):
        parse_video(payload, 0)


def test_aac_sequence_header_and_frames() -> None:
    config = parse_audio(b"\xaf\x00\x11\x90", 0)  # AAC-LC 48 kHz stereo
    assert isinstance(config, AudioConfig)
    assert config.track.codec is Codec.AAC
    assert config.track.extradata == b"\x11\x90"
    assert (config.track.sample_rate, config.track.channels) == (48000, 2)
    frame = parse_audio(b"\xaf\x01abc", 21)
    assert frame == MediaPacket(TrackKind.AUDIO, 21 * 90, 21 * 90, b"abc", keyframe=True)
    assert parse_audio(b"\xaf\x01", 21) is None  # an empty frame


@pytest.mark.parametrize(
    ("config", "rate", "channels"),
    [
        ("1210", 44100, 2),  # AAC-LC 44.1 kHz stereo
        ("1208", 44100, 1),  # mono
        ("1188", 48000, 1),
        ("1590", 8000, 2),  # index 11
        ("1618", 7350, 3),  # index 12
        ("2b920800", 44100, 2),  # HE-AAC (SBR): 22.05 kHz core, 44.1 kHz out
        ("eb8a08", 44100, 1),  # HE-AACv2 (PS): object type 29, mono core
        ("1780562210", 44100, 2),  # explicit rate: index 15, then 24 bits
        ("f8e640", 48000, 2),  # escaped object type 39 (ER AAC ELD)
    ],
)
def test_audio_specific_config_variants(config: str, rate: int, channels: int) -> None:
    track = parse_audio_specific_config(bytes.fromhex(config))
    assert (track.sample_rate, track.channels) == (rate, channels)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xaf",  # AAC without its packet type
        b"\x2f\x01mp3",  # MP3
        b"\xaf\x00\x17",  # AudioSpecificConfig cut short
        b"\xaf\x00\x07\xf0",  # object type 0
        b"\xaf\x00\x16\x90",  # sampling frequency index 13 (reserved)
        b"\xaf\x00\x12\x40",  # channel configuration 8 (reserved)
        b"\xaf\x05abc",  # unknown AAC packet type
        b"\x90mp3 ",  # enhanced audio with an unsupported FourCC
        b"\x90Opus" + b"OpusHead\x01",  # OpusHead cut short
        b"\x95mp4a",  # multitrack audio
    ],
)
def test_malformed_or_unsupported_audio_raises(payload: bytes) -> None:
    with pytest.raises(RtmpProtocolError):
        parse_audio(payload, 0)


def test_enhanced_rtmp_aac_and_opus() -> None:
    aac = parse_audio(b"\x90mp4a\x12\x10", 0)
    assert isinstance(aac, AudioConfig) and aac.track.sample_rate == 44100
    frame = parse_audio(b"\x91mp4adata", 10)
    assert frame == MediaPacket(TrackKind.AUDIO, 900, 900, b"data", keyframe=True)
    head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    opus = parse_audio(b"\x90Opus" + head, 0)
    assert isinstance(opus, AudioConfig)
    assert (opus.track.codec, opus.track.sample_rate, opus.track.channels) == (
        Codec.OPUS,
        48000,
        2,
    )
    assert parse_audio(b"\x92Opus", 0) is None  # sequence end


def flv_tag(type_id: int, timestamp: int, body: bytes) -> bytes:
    header = bytes([type_id]) + len(body).to_bytes(3, "big")
    header += (timestamp & 0xFFFFFF).to_bytes(3, "big") + bytes([timestamp >> 24]) + bytes(3)
    return header + body + (11 + len(body)).to_bytes(4, "big")


def test_aggregate_messages_split_into_tags_on_the_aggregate_clock() -> None:
    payload = flv_tag(9, 5000, b"v1") + flv_tag(8, 5010, b"a1") + flv_tag(9, 0x01000000, b"v2")
    assert split_aggregate(payload, 200) == [
        (9, 200, b"v1"),
        (8, 210, b"a1"),
        (9, 200 + 0x01000000 - 5000, b"v2"),
    ]
    assert split_aggregate(payload[:-4], 0)[-1][2] == b"v2"  # the last back pointer is optional
    with pytest.raises(MediaFormatError):
        split_aggregate(payload[:-8], 0)
    with pytest.raises(MediaFormatError):
        split_aggregate(payload + b"\x09\x00", 0)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 0xFFFFFFFF))
def test_arbitrary_tag_payloads_only_raise_protocol_errors(payload: bytes, ts: int) -> None:
    for parse in (parse_video, parse_audio, split_aggregate):
        with contextlib.suppress(RtmpProtocolError):
            parse(payload, ts)
