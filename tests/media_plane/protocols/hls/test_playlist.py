"""The live media playlist against the rules of RFC 8216."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest

from media_plane.protocols.hls.playlist import (
    LivePlaylist,
    PlaylistSegment,
    format_program_date_time,
)

EPOCH = 1_700_000_000.0


def _segment(index: int, duration: float = 2.0, *, discontinuity: bool = False) -> PlaylistSegment:
    return PlaylistSegment(f"{index}.ts", duration, EPOCH + 2 * index, discontinuity)


def _lines(playlist: LivePlaylist) -> list[str]:
    text = playlist.render().decode("ascii")
    assert text.endswith("\n")
    return text.splitlines()


def _tag(lines: list[str], name: str) -> str:
    values = [line.split(":", 1)[1] for line in lines if line.startswith(name + ":")]
    assert len(values) == 1, f"{name} must appear exactly once"
    return values[0]


def _listed(lines: list[str]) -> list[tuple[float, str]]:
    """(EXTINF duration, URI) pairs in order."""
    pairs = []
    for index, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            pairs.append((float(line[len("#EXTINF:") :].rstrip(",")), lines[index + 1]))
    return pairs


def test_render_starts_with_extm3u_and_declares_version_3() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0))
    lines = _lines(playlist)
    assert lines[0] == "#EXTM3U"
    assert _tag(lines, "#EXT-X-VERSION") == "3"


def test_render_headers_come_before_the_first_segment() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0))
    lines = _lines(playlist)
    first_segment_tag = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-PROGRAM"))
    for name in (
        "#EXT-X-TARGETDURATION",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-DISCONTINUITY-SEQUENCE",
    ):
        position = next(i for i, line in enumerate(lines) if line.startswith(name))
        assert position < first_segment_tag


def test_extinf_has_three_decimals_and_a_comma() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0, 2.0))
    playlist.append(_segment(1, 1.23456))
    extinf = [line for line in _lines(playlist) if line.startswith("#EXTINF")]
    assert extinf == ["#EXTINF:2.000,", "#EXTINF:1.235,"]
    assert all(re.fullmatch(r"#EXTINF:\d+\.\d{3},", line) for line in extinf)


def test_every_segment_has_a_program_date_time_in_utc_milliseconds() -> None:
    playlist = LivePlaylist()
    for index in range(3):
        playlist.append(_segment(index))
    lines = _lines(playlist)
    stamps = [line for line in lines if line.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
    assert len(stamps) == 3
    for index, stamp in enumerate(stamps):
        value = stamp.split(":", 1)[1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value)
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert parsed.timestamp() == pytest.approx(EPOCH + 2 * index, abs=0.001)
    # Each date applies to the segment right after it.
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME"):
            assert lines[index + 1].startswith("#EXTINF")


def test_program_date_time_rounds_to_milliseconds() -> None:
    assert format_program_date_time(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_program_date_time(1.0006) == "1970-01-01T00:00:01.001Z"
    assert format_program_date_time(59.9996) == "1970-01-01T00:01:00.000Z"


def test_target_duration_is_the_longest_segment_rounded_to_the_nearest_integer() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0, 2.0))
    assert _tag(_lines(playlist), "#EXT-X-TARGETDURATION") == "2"
    # A WHIP publish's 2.001 s segments: still 2 (RFC 8216 4.3.3.1 rounds to nearest).
    playlist.append(_segment(1, 2.001))
    playlist.append(_segment(2, 2.4994))
    assert _tag(_lines(playlist), "#EXT-X-TARGETDURATION") == "2"
    # Halves round up, as the RFC's reader does.
    playlist.append(_segment(3, 2.5))
    assert _tag(_lines(playlist), "#EXT-X-TARGETDURATION") == "3"


def test_target_duration_never_decreases_after_long_segments_leave() -> None:
    playlist = LivePlaylist(window=3)
    playlist.append(_segment(0, 5.5))
    for index in range(1, 10):
        playlist.append(_segment(index, 2.0))
    lines = _lines(playlist)
    assert all(duration < 3 for duration, _ in _listed(lines))
    assert _tag(lines, "#EXT-X-TARGETDURATION") == "6"


def test_every_rounded_extinf_stays_within_the_target_duration() -> None:
    playlist = LivePlaylist(window=20)
    for index, duration in enumerate((2.0, 2.4999, 2.5, 1.0, 3.0004, 0.2)):
        playlist.append(_segment(index, duration))
        lines = _lines(playlist)
        target = int(_tag(lines, "#EXT-X-TARGETDURATION"))
        for listed, _ in _listed(lines):
            assert math.floor(listed + 0.5) <= target  # RFC 8216 4.3.3.1


def test_window_slides_and_media_sequence_counts_removed_segments() -> None:
    playlist = LivePlaylist(window=3)
    for index in range(7):
        playlist.append(_segment(index))
    lines = _lines(playlist)
    assert _tag(lines, "#EXT-X-MEDIA-SEQUENCE") == "4"
    assert [uri for _, uri in _listed(lines)] == ["4.ts", "5.ts", "6.ts"]
    assert playlist.next_sequence == 7


def test_append_returns_sequence_numbers_and_removed_segments() -> None:
    playlist = LivePlaylist(window=3)
    results = [playlist.append(_segment(index)) for index in range(5)]
    assert [sequence for sequence, _ in results] == [0, 1, 2, 3, 4]
    assert [[s.uri for s in removed] for _, removed in results] == [[], [], [], ["0.ts"], ["1.ts"]]


def test_window_keeps_three_target_durations_listed() -> None:
    # RFC 8216 6.2.2: removing a segment must not leave less than 3x target duration.
    playlist = LivePlaylist(window=2)
    playlist.append(_segment(0, 4.0))  # target duration 4, so at least 12 s stay listed
    for index in range(1, 30):
        playlist.append(_segment(index, 1.0))
    listed = _listed(_lines(playlist))
    assert playlist.media_sequence > 0
    assert sum(duration for duration, _ in listed) >= 3 * 4
    assert len(listed) == 12


def test_discontinuity_tag_precedes_the_marked_segment() -> None:
    playlist = LivePlaylist(window=5)
    playlist.append(_segment(0))
    playlist.append(_segment(1, discontinuity=True))
    lines = _lines(playlist)
    position = lines.index("#EXT-X-DISCONTINUITY")
    # The tag applies to the next segment: its date, duration and URI follow.
    assert lines[position + 1].startswith("#EXT-X-PROGRAM-DATE-TIME")
    assert lines[position + 2].startswith("#EXTINF")
    assert lines[position + 3] == "1.ts"
    assert lines.count("#EXT-X-DISCONTINUITY") == 1


def test_discontinuity_sequence_counts_discontinuities_that_left_the_window() -> None:
    playlist = LivePlaylist(window=3)
    playlist.append(_segment(0))
    playlist.append(_segment(1, discontinuity=True))
    playlist.append(_segment(2))
    playlist.append(_segment(3, discontinuity=True))
    assert _tag(_lines(playlist), "#EXT-X-DISCONTINUITY-SEQUENCE") == "0"
    playlist.append(_segment(4))  # slides segment 1, the tagged one, out
    lines = _lines(playlist)
    assert _tag(lines, "#EXT-X-MEDIA-SEQUENCE") == "2"
    assert _tag(lines, "#EXT-X-DISCONTINUITY-SEQUENCE") == "1"
    assert lines.count("#EXT-X-DISCONTINUITY") == 1


def test_endlist_is_written_once_ended_and_last() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0))
    assert "#EXT-X-ENDLIST" not in _lines(playlist)
    playlist.end()
    lines = _lines(playlist)
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert lines.count("#EXT-X-ENDLIST") == 1


def test_append_after_end_reopens_the_playlist() -> None:
    playlist = LivePlaylist()
    playlist.append(_segment(0))
    playlist.end()
    playlist.append(_segment(1, discontinuity=True))
    assert "#EXT-X-ENDLIST" not in _lines(playlist)
    assert not playlist.ended


def test_empty_playlist_renders_headers_only() -> None:
    lines = _lines(LivePlaylist())
    assert lines[0] == "#EXTM3U"
    assert not any(line.startswith("#EXTINF") for line in lines)


def test_only_known_tags_and_uris_are_emitted() -> None:
    playlist = LivePlaylist(window=4)
    for index in range(6):
        playlist.append(_segment(index, discontinuity=index == 3))
    playlist.end()
    allowed = re.compile(
        r"#EXTM3U|#EXT-X-VERSION:\d+|#EXT-X-TARGETDURATION:\d+|#EXT-X-MEDIA-SEQUENCE:\d+"
        r"|#EXT-X-DISCONTINUITY-SEQUENCE:\d+|#EXT-X-DISCONTINUITY|#EXT-X-PROGRAM-DATE-TIME:\S+"
        r"|#EXTINF:\d+\.\d{3},|#EXT-X-ENDLIST|\d+\.ts"
    )
    for line in _lines(playlist):
        assert allowed.fullmatch(line), line


def test_invalid_window_and_duration_are_refused() -> None:
    with pytest.raises(ValueError):
        LivePlaylist(window=0)
    with pytest.raises(ValueError):
        LivePlaylist().append(_segment(0, -1.0))
