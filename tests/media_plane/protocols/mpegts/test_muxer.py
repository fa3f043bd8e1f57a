"""MPEG-TS segments from canonical packets, checked with the real ffprobe/ffmpeg."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from media_plane.media import AudioTrack, Codec, VideoTrack
from media_plane.pipelines.remux.segmenter import MuxedSegment, PublishTimeline, Segmenter
from media_plane.protocols.hls.playlist import nearest_integer
from media_plane.protocols.mpegts.muxer import (
    MuxError,
    TsSegmentMuxer,
    UnsupportedTrackError,
    carry_continuity,
)
from tests.media_plane.broadcasts import Broadcast


def _ts_packet(pid: int, cc: int, *, payload: bool = True) -> bytes:
    adaptation = 0b01 if payload else 0b10
    header = bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF, (adaptation << 4) | cc])
    return header + b"\xff" * 184


def _counters(segment: bytes) -> list[tuple[int, int]]:
    return [
        (((segment[i + 1] & 0x1F) << 8) | segment[i + 2], segment[i + 3] & 0x0F)
        for i in range(0, len(segment), 188)
    ]


def test_carry_continuity_shifts_each_pid_to_follow_the_previous_segment() -> None:
    segment = bytearray(_ts_packet(0, 0) + _ts_packet(0x100, 0) + _ts_packet(0x100, 1))
    counters = {0: 5, 0x100: 15}
    carry_continuity(segment, counters)
    assert _counters(bytes(segment)) == [(0, 5), (0x100, 15), (0x100, 0)]
    assert counters == {0: 6, 0x100: 1}


def test_carry_continuity_keeps_adaptation_only_packets_on_the_previous_counter() -> None:
    segment = bytearray(_ts_packet(0x100, 15, payload=False) + _ts_packet(0x100, 0))
    counters = {0x100: 7}
    carry_continuity(segment, counters)
    assert _counters(bytes(segment)) == [(0x100, 6), (0x100, 7)]
    assert counters == {0x100: 8}


def test_carry_continuity_leaves_the_first_segment_alone() -> None:
    original = _ts_packet(0x101, 0) + _ts_packet(0x101, 1)
    segment = bytearray(original)
    counters: dict[int, int] = {}
    carry_continuity(segment, counters)
    assert bytes(segment) == original
    assert counters == {0x101: 2}


@pytest.mark.parametrize(
    "data", [b"\x47" * 100, b"\x00" + _ts_packet(0, 0)[1:]], ids=["partial", "no-sync"]
)
def test_carry_continuity_refuses_broken_transport_streams(data: bytes) -> None:
    with pytest.raises(MuxError):
        carry_continuity(bytearray(data), {})


def test_unsupported_tracks_are_refused() -> None:
    with pytest.raises(UnsupportedTrackError):
        TsSegmentMuxer(None, None)
    with pytest.raises(UnsupportedTrackError):
        TsSegmentMuxer(VideoTrack(Codec.HEVC, b"\x01"), None)
    with pytest.raises(UnsupportedTrackError):
        TsSegmentMuxer(None, AudioTrack(Codec.OPUS, b"", 48000, 2))
    with pytest.raises(UnsupportedTrackError):
        TsSegmentMuxer(VideoTrack(Codec.H264, b"\x00garbage"), None)


# -- real media -------------------------------------------------------------------------


def _segments(broadcast: Broadcast, target: float = 2.0) -> list[MuxedSegment]:
    segmenter = Segmenter(broadcast.video, broadcast.audio, target_duration=target)
    segments = [s for s in map(segmenter.push, broadcast.packets) if s is not None]
    last = segmenter.finish()
    assert last is not None
    return [*segments, last]


def _probe(ffprobe: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate,channels:format=start_time,duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _first_video_frame(ffprobe: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    frames: list[dict[str, object]] = json.loads(out.stdout)["frames"]
    return frames[0]


def _decode_errors(ffmpeg: str, path: Path) -> str:
    out = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "warning", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stderr.strip()


@pytest.mark.media
def test_each_segment_decodes_alone_with_both_tracks(
    broadcast: Callable[..., Broadcast], ffprobe: str, ffmpeg: str, tmp_path: Path
) -> None:
    segments = _segments(broadcast(7.0))
    assert len(segments) == 4
    for index, segment in enumerate(segments):
        path = tmp_path / f"{index}.ts"
        path.write_bytes(segment.data)
        probe = _probe(ffprobe, path)
        streams = {s["codec_type"]: s for s in probe["streams"]}  # type: ignore[attr-defined]
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
        assert streams["audio"]["codec_name"] == "aac"
        assert (streams["audio"]["sample_rate"], streams["audio"]["channels"]) == ("48000", 2)
        frame = _first_video_frame(ffprobe, path)
        assert frame["key_frame"] == 1 and frame["pict_type"] == "I"
        assert _decode_errors(ffmpeg, path) == ""


@pytest.mark.media
def test_segment_durations_match_the_target(
    broadcast: Callable[..., Broadcast], ffprobe: str, tmp_path: Path
) -> None:
    segments = _segments(broadcast(7.0))
    for segment in segments[:-1]:
        assert segment.duration == pytest.approx(2.0, abs=0.035)
    for index, segment in enumerate(segments):
        path = tmp_path / f"{index}.ts"
        path.write_bytes(segment.data)
        fmt = _probe(ffprobe, path)["format"]
        # The container agrees with what the playlist will say, within an audio frame or so.
        assert float(fmt["duration"]) == pytest.approx(segment.duration, abs=0.08)  # type: ignore[index]


@pytest.mark.media
def test_configured_target_duration_is_honoured(broadcast: Callable[..., Broadcast]) -> None:
    one_second = _segments(broadcast(7.0), target=1.0)
    assert [round(s.duration, 1) for s in one_second[:-1]] == [1.0] * 6
    four_seconds = _segments(broadcast(7.0), target=3.5)
    assert round(four_seconds[0].duration, 1) == 4.0


def _timestamp(field: bytes) -> int:
    """A PES header's 33-bit PTS or DTS (ISO/IEC 13818-1 2.4.3.7)."""
    return (
        ((field[0] >> 1) & 7) << 30
        | field[1] << 22
        | (field[2] >> 1) << 15
        | field[3] << 7
        | field[4] >> 1
    )


def _pcr_leads(segment: bytes) -> dict[int, list[int]]:
    """Per PID, each PES's DTS minus the last PCR sent before it (90 kHz ticks)."""
    pcr: int | None = None
    leads: dict[int, list[int]] = {}
    for offset in range(0, len(segment), 188):
        packet = segment[offset : offset + 188]
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        control = packet[3] >> 4 & 3
        payload = 4
        if control & 2:
            length = packet[4]
            if length and packet[5] & 0x10:  # PCR flag: its 33-bit base, 90 kHz
                pcr = packet[6] << 25 | packet[7] << 17 | packet[8] << 9 | packet[9] << 1
                pcr |= packet[10] >> 7
            payload = 5 + length
        start = packet[1] & 0x40
        header = packet[payload : payload + 19]
        if start and control & 1 and header[:3] == b"\x00\x00\x01" and pcr is not None:
            has_dts = header[7] >> 6 == 3
            dts = _timestamp(header[14:19] if has_dts else header[9:14])
            leads.setdefault(pid, []).append(dts - pcr)
    return leads


@pytest.mark.media
def test_the_pcr_runs_ahead_of_every_decode_timestamp(broadcast: Callable[..., Broadcast]) -> None:
    # T-STD: each access unit is in the decoder's buffer before its DTS on the PCR clock.
    for segment in _segments(broadcast(7.0)):
        leads = _pcr_leads(segment.data)
        assert len(leads) == 2  # video and audio PES
        for pid, values in leads.items():
            assert min(values) >= 0.1 * 90_000, (pid, min(values) / 90)


@pytest.mark.media
def test_a_scene_cut_keyframe_keeps_every_segment_within_the_target(
    broadcast: Callable[..., Broadcast],
) -> None:
    # x264 with a 2 s GOP and an IDR forced at 5.9 s, counting its GOP from there.
    segments = _segments(broadcast(12.0, gop=60, forced_keyframes=(177,)))
    durations = [round(s.duration, 1) for s in segments]
    assert 1.9 in durations
    assert all(nearest_integer(d) <= 2 for d in durations), durations


@pytest.mark.media
def test_timestamps_and_counters_continue_across_segments(
    broadcast: Callable[..., Broadcast], ffprobe: str, ffmpeg: str, tmp_path: Path
) -> None:
    segments = _segments(broadcast(7.0))
    starts = []
    for index, segment in enumerate(segments):
        path = tmp_path / f"{index}.ts"
        path.write_bytes(segment.data)
        starts.append(float(_probe(ffprobe, path)["format"]["start_time"]))  # type: ignore[index]
    for before, after, segment in zip(starts, starts[1:], segments, strict=False):
        assert after - before == pytest.approx(segment.duration, abs=0.08)
    # Back to back, the segments form one transport stream with unbroken continuity.
    joined = b"".join(s.data for s in segments)
    expected: dict[int, int] = {}
    for position in range(0, len(joined), 188):
        pid = ((joined[position + 1] & 0x1F) << 8) | joined[position + 2]
        counter = joined[position + 3] & 0x0F
        has_payload = joined[position + 3] & 0x10
        if pid in expected:
            want = expected[pid] if has_payload else (expected[pid] - 1) & 0x0F
            assert counter == want, f"PID {pid:#x} at byte {position}"
        expected[pid] = (counter + 1) & 0x0F if has_payload else expected.get(pid, counter)
    whole = tmp_path / "joined.ts"
    whole.write_bytes(joined)
    assert _decode_errors(ffmpeg, whole) == ""


@pytest.mark.media
def test_a_reconnect_continues_timestamps_and_counters(
    broadcast: Callable[..., Broadcast], ffmpeg: str, tmp_path: Path
) -> None:
    media = broadcast(3.0)
    timeline = PublishTimeline()
    segments: list[MuxedSegment] = []
    for _ in range(2):
        segmenter = Segmenter(media.video, media.audio, timeline=timeline)
        segments += [s for s in map(segmenter.push, media.packets) if s is not None]
        last = segmenter.finish()
        assert last is not None
        segments.append(last)
    assert segments[2].first_of_publish
    assert segments[2].start_dts == segments[1].start_dts + round(segments[1].duration * 90000)
    whole = tmp_path / "both.ts"
    whole.write_bytes(b"".join(s.data for s in segments))
    assert _decode_errors(ffmpeg, whole) == ""


@pytest.mark.media
def test_audio_only_segments_decode_and_are_cut_by_time(
    broadcast: Callable[..., Broadcast], ffprobe: str, ffmpeg: str, tmp_path: Path
) -> None:
    media = broadcast(7.0, video=False)
    assert media.video is None
    segments = _segments(media)
    for segment in segments[:-1]:
        assert segment.duration == pytest.approx(2.0, abs=0.03)
    for index, segment in enumerate(segments):
        path = tmp_path / f"{index}.ts"
        path.write_bytes(segment.data)
        streams = _probe(ffprobe, path)["streams"]
        assert [s["codec_type"] for s in streams] == ["audio"]  # type: ignore[attr-defined]
        assert _decode_errors(ffmpeg, path) == ""


@pytest.mark.media
def test_video_only_segments_decode(
    broadcast: Callable[..., Broadcast], ffprobe: str, ffmpeg: str, tmp_path: Path
) -> None:
    segments = _segments(broadcast(5.0, audio=False))
    assert [round(s.duration, 2) for s in segments[:-1]] == [2.0, 2.0]
    path = tmp_path / "v.ts"
    path.write_bytes(segments[1].data)
    assert _first_video_frame(ffprobe, path)["key_frame"] == 1
    assert _decode_errors(ffmpeg, path) == ""
