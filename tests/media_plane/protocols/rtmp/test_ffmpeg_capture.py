"""A real publish, replayed without sockets.

`data/ffmpeg_publish_extended_ts.bin` holds every byte FFmpeg 5.1 (Lavf59.27.100) sent
to this server while publishing one second of 160x96 15 fps H.264 (GOP 5, two B-frames)
and mono 44.1 kHz AAC to `rtmp://127.0.0.1:PORT/live/key?x=1` with
`-output_ts_offset 16778`: media timestamps sit past 2^24 ms, so the first frame's
type 1 header and its type 3 continuation chunk carry extended timestamps.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.chunks import COMMAND_AMF0, DATA_AMF0, ChunkReader, RtmpMessage
from media_plane.protocols.rtmp.handshake import ServerHandshake
from media_plane.protocols.rtmp.media_feed import MediaFeed
from tests.media_plane.rtmp_rig import DATA

CAPTURE = (DATA / "ffmpeg_publish_extended_ts.bin").read_bytes()
FIRST_FRAME_MS = 16_777_867


class Sink:
    def __init__(self) -> None:
        self.tracks: list[tuple[VideoTrack | None, AudioTrack | None]] = []
        self.packets: list[MediaPacket] = []

    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.tracks.append((video, audio))

    def push(self, packet: MediaPacket) -> None:
        self.packets.append(packet)


def replay(pieces: list[bytes]) -> list[RtmpMessage]:
    handshake, reader = ServerHandshake(), ChunkReader()
    messages: list[RtmpMessage] = []
    for piece in pieces:
        if not handshake.done:
            _, piece = handshake.feed(piece)
        messages += reader.feed(piece)
    assert handshake.done and reader.buffered == 0
    assert reader.chunk_size == 4096
    return messages


def test_the_command_exchange_of_a_publish() -> None:
    messages = replay([CAPTURE])
    calls = [amf0.decode_all(m.payload) for m in messages if m.type_id == COMMAND_AMF0]
    assert [call[0] for call in calls] == [
        "connect",
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
        "FCUnpublish",
        "deleteStream",
    ]
    assert calls[4] == ["publish", 5.0, None, "key?x=1", "live"]
    [metadata] = [amf0.decode_all(m.payload) for m in messages if m.type_id == DATA_AMF0]
    assert metadata[:2] == ["@setDataFrame", "onMetaData"]
    assert isinstance(metadata[2], dict)
    assert (metadata[2]["width"], metadata[2]["height"]) == (160.0, 96.0)


def test_the_media_of_a_publish() -> None:
    feed, sink = MediaFeed(), Sink()
    feed.attach(sink)
    for message in replay([CAPTURE]):
        feed.message(message.type_id, message.timestamp, message.payload)

    [(video, audio)] = sink.tracks
    assert video is not None and video.codec is Codec.H264
    assert (video.width, video.height) == (160, 96)
    assert audio is not None and audio.codec is Codec.AAC
    assert (audio.sample_rate, audio.channels) == (44100, 1)

    frames = [p for p in sink.packets if p.kind is TrackKind.VIDEO]
    sounds = [p for p in sink.packets if p.kind is TrackKind.AUDIO]
    assert (len(frames), len(sounds)) == (15, 45)
    assert [i for i, p in enumerate(frames) if p.keyframe] == [0, 5, 10]
    assert frames[0].dts == FIRST_FRAME_MS * 90
    assert frames[0].pts == (FIRST_FRAME_MS + 133) * 90  # B-frames: pts runs ahead
    assert all(b.dts > a.dts for a, b in itertools.pairwise(frames))
    assert all(b.dts > a.dts for a, b in itertools.pairwise(sounds))
    assert len({p.pts for p in frames}) == 15
    assert feed.dropped == 0


def test_the_capture_fed_byte_by_byte_gives_the_same_messages() -> None:
    whole = replay([CAPTURE])
    assert replay([CAPTURE[i : i + 1] for i in range(len(CAPTURE))]) == whole


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, len(CAPTURE) - 1), max_size=40))
def test_the_capture_split_anywhere_gives_the_same_messages(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(CAPTURE)]
    pieces = [CAPTURE[a:b] for a, b in itertools.pairwise(bounds)]
    assert replay(pieces) == replay([CAPTURE])
