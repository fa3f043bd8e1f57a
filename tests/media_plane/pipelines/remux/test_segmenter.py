"""Where segments are cut and on which timeline, with a recording muxer in place of PyAV."""

from __future__ import annotations

import itertools

import pytest

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.pipelines.remux.segmenter import (
    TIMELINE_ORIGIN,
    MuxedSegment,
    PublishTimeline,
    Segmenter,
)
from media_plane.protocols.hls.playlist import LivePlaylist, PlaylistSegment
from media_plane.protocols.mpegts.muxer import MuxError

VIDEO = VideoTrack(Codec.H264, b"", 320, 240)
AUDIO = AudioTrack(Codec.AAC, b"", 48000, 2)
FRAME = 3000  # 30 fps at 90 kHz
AAC_FRAME = 1920  # 1024 samples at 48 kHz


class RecordingMuxer:
    """Records what would be muxed; each closed segment is its packet list, as bytes."""

    def __init__(self, has_video: bool = True, fail_on: int | None = None) -> None:
        self.continuity: dict[int, int] = {}
        self._has_video = has_video
        self._open: list[tuple[TrackKind, int, int, bool]] | None = None
        self.closed: list[list[tuple[TrackKind, int, int, bool]]] = []
        self.fail_on = fail_on
        self.aborted = 0

    @property
    def has_video(self) -> bool:
        return self._has_video

    @property
    def is_open(self) -> bool:
        return self._open is not None

    def open_segment(self) -> None:
        assert self._open is None
        self._open = []

    def write(self, kind: TrackKind, pts: int, dts: int, data: bytes, keyframe: bool) -> None:
        assert self._open is not None
        if self.fail_on is not None and dts == self.fail_on:
            raise MuxError("rejected")
        self._open.append((kind, pts, dts, keyframe))

    def close_segment(self) -> bytes:
        assert self._open is not None
        self.closed.append(self._open)
        self._open = None
        return b"segment-%d" % len(self.closed)

    def abort_segment(self) -> None:
        self._open = None
        self.aborted += 1


def video(index: int, *, gop: int = 30, offset: int = 0) -> MediaPacket:
    dts = offset + index * FRAME
    return MediaPacket(TrackKind.VIDEO, dts, dts + 2 * FRAME, b"v", keyframe=index % gop == 0)


def audio(index: int, *, offset: int = 0) -> MediaPacket:
    dts = offset + index * AAC_FRAME
    return MediaPacket(TrackKind.AUDIO, dts, dts, b"a", keyframe=True)


def run(segmenter: Segmenter, packets: list[MediaPacket]) -> list[MuxedSegment]:
    segments = [s for s in map(segmenter.push, packets) if s is not None]
    last = segmenter.finish()
    if last is not None:
        segments.append(last)
    return segments


def interleaved(seconds: float, *, gop: int = 30, offset: int = 0) -> list[MediaPacket]:
    packets = [video(i, gop=gop, offset=offset) for i in range(int(seconds * 30))]
    packets += [audio(i, offset=offset) for i in range(int(seconds * 25))]
    return sorted(packets, key=lambda p: p.dts)


def make(muxer: RecordingMuxer, **options: object) -> Segmenter:
    return Segmenter(VIDEO, AUDIO, muxer=muxer, wall_clock=lambda: 1000.0, **options)  # type: ignore[arg-type]


def test_cuts_at_the_first_keyframe_at_or_after_the_target() -> None:
    muxer = RecordingMuxer()
    segments = run(make(muxer, target_duration=2.0), interleaved(7.0))
    assert [s.duration for s in segments] == [2.0, 2.0, 2.0, pytest.approx(1.0, abs=0.05)]
    for packets in muxer.closed:
        first_video = next(p for p in packets if p[0] is TrackKind.VIDEO)
        assert first_video[3], "every segment starts with a keyframe"


def test_target_between_keyframes_waits_for_the_next_keyframe() -> None:
    muxer = RecordingMuxer()
    segments = run(make(muxer, target_duration=1.5), interleaved(6.0))
    assert [s.duration for s in segments[:2]] == [2.0, 2.0]


def with_keyframes_at(seconds: float, keyframes: set[int]) -> list[MediaPacket]:
    """30 fps video with keyframes at the given frame indices, and audio."""
    packets = [
        MediaPacket(TrackKind.VIDEO, i * FRAME, i * FRAME + 2 * FRAME, b"v", i in keyframes)
        for i in range(int(seconds * 30))
    ]
    packets += [audio(i) for i in range(int(seconds * 25))]
    return sorted(packets, key=lambda p: p.dts)


def listed_target(segments: list[MuxedSegment]) -> int:
    playlist = LivePlaylist(window=len(segments))
    for index, segment in enumerate(segments):
        playlist.append(PlaylistSegment(f"{index}.ts", segment.duration, 0.0))
    return playlist.target_duration


def test_an_early_keyframe_that_restarts_the_gop_cuts_so_the_target_holds() -> None:
    # A 2 s GOP; at 5.9 s the encoder inserts a keyframe (a scene cut) and counts its GOP
    # from there: keyframes at 0, 2, 4, 5.9, 7.9, 9.9. Waiting for 7.9 would give a 3.9 s
    # segment and raise TARGETDURATION to 4.
    keyframes = {0, 60, 120, 177, 237, 297}
    segments = run(make(RecordingMuxer(), target_duration=2.0), with_keyframes_at(11.0, keyframes))
    assert [round(s.duration, 3) for s in segments[:6]] == [2.0, 2.0, 1.9, 2.0, 2.0, 1.1]
    assert listed_target(segments) == 2


def test_an_extra_keyframe_within_a_regular_gop_keeps_every_segment_within_the_target() -> None:
    # The regular keyframes go on at 2 s steps; the extra one at 4.6 s splits one GOP.
    keyframes = {0, 60, 120, 138, 180, 240}
    segments = run(make(RecordingMuxer(), target_duration=2.0), with_keyframes_at(9.0, keyframes))
    durations = [round(s.duration, 3) for s in segments]
    assert durations == [2.0, 2.0, 0.6, 1.4, 2.0, 1.0]
    assert listed_target(segments) == 2


def test_a_gop_longer_than_the_target_is_cut_at_each_keyframe() -> None:
    # OBS's default: a keyframe every 250 frames (8.33 s); nothing shorter can be cut.
    keyframes = {0, 250, 500}
    segments = run(make(RecordingMuxer(), target_duration=2.0), with_keyframes_at(20.0, keyframes))
    assert [round(s.duration, 2) for s in segments[:2]] == [8.33, 8.33]
    assert listed_target(segments) == 8


def test_keyframe_a_hair_before_the_target_still_cuts() -> None:
    # Millisecond FLV timestamps put the 2 s keyframe at 1.999 s.
    muxer = RecordingMuxer()
    segmenter = make(muxer, target_duration=2.0)
    packets = interleaved(5.0)
    packets = [
        MediaPacket(p.kind, p.dts - 90, p.pts - 90, p.data, p.keyframe) if p.dts == 180000 else p
        for p in packets
    ]
    segments = run(segmenter, packets)
    assert segments[0].duration == pytest.approx(1.999, abs=0.0001)


def test_packets_before_the_first_keyframe_are_dropped() -> None:
    muxer = RecordingMuxer()
    segmenter = make(muxer)
    packets = [audio(0), video(1), audio(1), video(2)]
    assert all(segmenter.push(p) is None for p in packets)
    assert not muxer.is_open
    segmenter.push(video(30))
    assert muxer.is_open


def test_audio_only_streams_are_cut_by_time() -> None:
    muxer = RecordingMuxer(has_video=False)
    segmenter = Segmenter(None, AUDIO, muxer=muxer, target_duration=2.0)
    segments = run(segmenter, [audio(i) for i in range(250)])  # 10 s
    for segment in segments[:-1]:
        assert 2.0 - 0.02 <= segment.duration < 2.0 + AAC_FRAME / 90000
    assert sum(s.duration for s in segments) == pytest.approx(250 * AAC_FRAME / 90000, abs=0.05)


def test_video_packets_are_ignored_when_the_muxer_has_no_video() -> None:
    muxer = RecordingMuxer(has_video=False)
    segmenter = Segmenter(None, AUDIO, muxer=muxer)
    segmenter.push(video(0))
    assert not muxer.is_open


def test_missing_keyframes_force_a_cut_at_the_maximum_duration() -> None:
    muxer = RecordingMuxer()
    segments = run(make(muxer, max_duration=4.0), interleaved(13.0, gop=10_000))
    assert [s.duration for s in segments[:3]] == pytest.approx([4.0, 4.0, 4.0], abs=0.03)


def test_timeline_starts_at_the_origin_and_is_continuous() -> None:
    muxer = RecordingMuxer()
    segments = run(make(muxer), interleaved(7.0, offset=123_456))
    assert segments[0].start_dts == TIMELINE_ORIGIN
    for before, after in itertools.pairwise(segments):
        assert after.start_dts == before.start_dts + round(before.duration * 90000)


def test_next_publish_continues_the_timeline() -> None:
    timeline = PublishTimeline()
    first = run(make(RecordingMuxer(), timeline=timeline), interleaved(3.0, offset=500_000))
    end = first[-1].start_dts + round(first[-1].duration * 90000)
    assert timeline.next_dts == end
    # The publisher reconnects; its clock restarts from zero.
    muxer = RecordingMuxer()
    second = run(make(muxer, timeline=timeline), interleaved(3.0))
    assert second[0].start_dts == end
    assert second[0].first_of_publish
    assert not second[1].first_of_publish
    assert all(dts >= end - 2 * AAC_FRAME for p in muxer.closed for _, _, dts, _ in p)


def test_program_date_time_follows_the_media_clock() -> None:
    segments = run(make(RecordingMuxer()), interleaved(7.0))
    assert [s.program_date_time for s in segments] == [1000.0, 1002.0, 1004.0, 1006.0]


def test_decode_timestamps_strictly_increase_per_track() -> None:
    muxer = RecordingMuxer()
    packets = interleaved(3.0)
    # A publisher repeating a timestamp and stepping back a little.
    packets.insert(40, MediaPacket(TrackKind.AUDIO, packets[39].dts, packets[39].dts, b"a"))
    packets.insert(60, MediaPacket(TrackKind.VIDEO, 30 * FRAME, 30 * FRAME, b"v"))
    run(make(muxer), packets)
    for kind in TrackKind:
        stamps = [dts for seg in muxer.closed for k, _, dts, _ in seg if k is kind]
        assert all(b > a for a, b in itertools.pairwise(stamps))
        assert all(pts >= dts for seg in muxer.closed for k, pts, dts, _ in seg if k is kind)


def test_a_clock_reset_is_re_anchored_not_clamped() -> None:
    muxer = RecordingMuxer()
    packets = interleaved(3.0, offset=50 * 90000) + interleaved(3.0)  # jumps back 50 s
    segments = run(make(muxer), packets)
    stamps = [s.start_dts for s in segments]
    assert stamps == sorted(stamps)
    assert sum(s.duration for s in segments) == pytest.approx(6.0, abs=0.1)


def test_muxer_error_drops_the_segment_and_resyncs_on_a_keyframe() -> None:
    muxer = RecordingMuxer(fail_on=TIMELINE_ORIGIN + 10 * FRAME)
    segmenter = make(muxer)
    produced: list[MuxedSegment] = []
    for packet in interleaved(7.0):
        try:
            segment = segmenter.push(packet)
        except MuxError:
            segmenter.abort()
            continue
        if segment is not None:
            produced.append(segment)
    assert muxer.aborted == 1
    assert produced[0].start_dts == TIMELINE_ORIGIN + 30 * FRAME  # the next keyframe
    assert produced[0].discontinuity


def test_finish_without_packets_produces_nothing() -> None:
    assert make(RecordingMuxer()).finish() is None


def test_invalid_target_is_refused() -> None:
    with pytest.raises(ValueError):
        make(RecordingMuxer(), target_duration=0)
