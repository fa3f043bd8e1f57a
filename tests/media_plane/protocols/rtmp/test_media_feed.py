"""When the stream hears about tracks, which frames it gets, and on which clock."""

from __future__ import annotations

import pytest

from media_plane.media import AudioTrack, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp.chunks import AGGREGATE, AUDIO, DATA_AMF0, VIDEO
from media_plane.protocols.rtmp.errors import MediaFormatError
from media_plane.protocols.rtmp.media_feed import MediaFeed

AVCC = bytes.fromhex("014d400cffe10016674d400ceca146d80880000003008000000f078a14cb01000468ce3c80")
VIDEO_CONFIG = b"\x17\x00\x00\x00\x00" + AVCC
AUDIO_CONFIG = b"\xaf\x00\x12\x10"
KEYFRAME = b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65"
INTER = b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41"
SOUND = b"\xaf\x01\x21\x10"


class Sink:
    def __init__(self) -> None:
        self.tracks: list[tuple[VideoTrack | None, AudioTrack | None]] = []
        self.packets: list[MediaPacket] = []

    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.tracks.append((video, audio))

    def push(self, packet: MediaPacket) -> None:
        self.packets.append(packet)


def attached() -> tuple[MediaFeed, Sink]:
    feed, sink = MediaFeed(), Sink()
    feed.attach(sink)
    return feed, sink


def test_tracks_are_announced_once_both_configurations_are_known() -> None:
    feed, sink = attached()
    feed.message(VIDEO, 0, VIDEO_CONFIG)
    assert sink.tracks == []
    feed.message(AUDIO, 0, AUDIO_CONFIG)
    [(video, audio)] = sink.tracks
    assert video is not None and video.width == 160
    assert audio is not None and audio.sample_rate == 44100
    feed.message(VIDEO, 0, KEYFRAME)
    feed.message(AUDIO, 0, SOUND)
    assert len(sink.tracks) == 1 and len(sink.packets) == 2


def test_a_single_track_is_announced_at_its_first_frame() -> None:
    feed, sink = attached()
    feed.message(VIDEO, 0, VIDEO_CONFIG)
    feed.message(VIDEO, 0, KEYFRAME)
    assert sink.tracks == [(feed.video, None)]
    # Audio that shows up later is announced as a change.
    feed.message(AUDIO, 40, AUDIO_CONFIG)
    assert sink.tracks[-1] == (feed.video, feed.audio) and len(sink.tracks) == 2


def test_a_repeated_identical_sequence_header_is_not_a_change() -> None:
    feed, sink = attached()
    for _ in range(3):
        feed.message(VIDEO, 0, VIDEO_CONFIG)
        feed.message(AUDIO, 0, AUDIO_CONFIG)
    assert len(sink.tracks) == 1
    feed.message(AUDIO, 0, b"\xaf\x00\x11\x90")  # now 48 kHz: a real change
    assert len(sink.tracks) == 2 and sink.tracks[-1][1] is not None
    assert sink.tracks[-1][1].sample_rate == 48000


def test_configurations_before_the_sink_are_kept_and_frames_dropped() -> None:
    feed, sink = MediaFeed(), Sink()
    feed.message(VIDEO, 0, VIDEO_CONFIG)
    feed.message(AUDIO, 0, AUDIO_CONFIG)
    feed.message(VIDEO, 0, KEYFRAME)
    assert feed.dropped == 1
    feed.attach(sink)
    assert sink.tracks == [(feed.video, feed.audio)]
    feed.message(VIDEO, 33, INTER)
    assert [p.dts for p in sink.packets] == [33 * 90]


def test_frames_without_a_configuration_are_dropped() -> None:
    feed, sink = attached()
    feed.message(AUDIO, 0, SOUND)
    feed.message(VIDEO, 0, KEYFRAME)
    assert sink.packets == [] and sink.tracks == [] and feed.dropped == 2


def test_a_detached_feed_delivers_nothing() -> None:
    feed, sink = attached()
    feed.message(VIDEO, 0, VIDEO_CONFIG)
    feed.detach()
    feed.message(VIDEO, 0, KEYFRAME)
    assert sink.packets == []


def test_timestamps_keep_growing_across_the_32_bit_wrap() -> None:
    feed, sink = attached()
    feed.message(VIDEO, 0xFFFFFFF0, VIDEO_CONFIG)
    feed.message(VIDEO, 0xFFFFFFF0, KEYFRAME)
    feed.message(AUDIO, 0xFFFFFFF0, AUDIO_CONFIG)
    feed.message(AUDIO, 0xFFFFFFEC, SOUND)  # audio slightly behind video
    feed.message(VIDEO, 0x00000010, INTER)  # past the wrap
    feed.message(AUDIO, 0x00000008, SOUND)
    assert [(p.kind, p.dts // 90) for p in sink.packets] == [
        (TrackKind.VIDEO, 0xFFFFFFF0),
        (TrackKind.AUDIO, 0xFFFFFFEC),
        (TrackKind.VIDEO, 0x100000010),
        (TrackKind.AUDIO, 0x100000008),
    ]


def test_aggregate_messages_feed_their_tags() -> None:
    def tag(type_id: int, ts: int, body: bytes) -> bytes:
        head = bytes([type_id]) + len(body).to_bytes(3, "big") + ts.to_bytes(3, "big")
        return head + bytes(4) + body + (11 + len(body)).to_bytes(4, "big")

    feed, sink = attached()
    payload = tag(VIDEO, 100, VIDEO_CONFIG) + tag(AUDIO, 100, AUDIO_CONFIG)
    payload += tag(VIDEO, 100, KEYFRAME) + tag(AUDIO, 123, SOUND)
    payload += tag(DATA_AMF0, 100, b"ignored")
    feed.message(AGGREGATE, 5000, payload)
    assert len(sink.tracks) == 1
    assert [p.dts // 90 for p in sink.packets] == [5000, 5023]
    with pytest.raises(MediaFormatError):
        feed.message(AGGREGATE, 0, tag(AGGREGATE, 0, b""))


def test_other_message_types_are_ignored() -> None:
    feed, sink = attached()
    feed.message(DATA_AMF0, 0, b"\x02\x00\x0aonMetaData")
    assert sink.tracks == [] and sink.packets == [] and feed.dropped == 0
