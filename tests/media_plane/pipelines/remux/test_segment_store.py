"""The in-memory segment window, reconnects and expiry."""

from __future__ import annotations

import re

import pytest

from media_plane.pipelines.remux.segment_store import SegmentStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _add(
    store: SegmentStore, playback_id: str = "pb", n: int = 1, *, new_publish: bool = False
) -> list[str]:
    """Add `n` segments; with `new_publish` the first one opens a new publish."""
    return [
        store.add_segment(
            playback_id,
            f"data-{index}".encode(),
            duration=2.0,
            program_date_time=1_700_000_000.0 + index,
            new_publish=new_publish and index == 0,
        )
        for index in range(n)
    ]


def _uris(playlist: bytes) -> list[str]:
    return [line for line in playlist.decode().splitlines() if line and not line.startswith("#")]


def _tag(playlist: bytes, name: str) -> str:
    match = re.search(rf"^{name}:(\S+)$", playlist.decode(), re.M)
    assert match is not None
    return match.group(1)


def test_unknown_playback_id_has_no_playlist_or_segment() -> None:
    store = SegmentStore()
    assert store.playlist("nope") is None
    assert store.segment("nope", "0-x.ts") is None


def test_added_segments_are_listed_and_served() -> None:
    store = SegmentStore()
    names = _add(store, n=3)
    playlist = store.playlist("pb")
    assert playlist is not None
    assert _uris(playlist) == names
    assert store.segment("pb", names[1]) == b"data-1"
    assert store.segment("pb", "missing.ts") is None


def test_playlist_bytes_are_rendered_once_per_change() -> None:
    store = SegmentStore()
    _add(store)
    first = store.playlist("pb")
    assert store.playlist("pb") is first  # a GET is a lookup, not a render
    _add(store)
    assert store.playlist("pb") is not first


def test_segments_that_left_the_window_stay_reachable_a_while() -> None:
    clock = FakeClock()
    store = SegmentStore(window=3, min_retained=1, clock=clock)
    names = _add(store, n=5)
    playlist = store.playlist("pb")
    assert playlist is not None
    assert _uris(playlist) == names[2:]
    # Removed from the playlist, still served: duration + playlist duration (RFC 8216 6.2.2).
    assert store.segment("pb", names[0]) == b"data-0"
    clock.now += 2.0 + 6.0 + 0.1
    store.evict_expired()
    assert store.segment("pb", names[0]) is None  # expired, beyond the one kept
    assert store.segment("pb", names[1]) == b"data-1"  # the minimum retained


def test_retained_segments_are_bounded_by_count_and_time() -> None:
    clock = FakeClock()
    store = SegmentStore(window=3, min_retained=2, clock=clock)
    for _ in range(50):
        _add(store)
        clock.now += 2.0
    stats = store.stats()
    # 3 listed + what left within the last duration + playlist duration (8 s at 2 s each).
    assert stats.segments <= 3 + 5
    assert stats.segments_added == 50


def test_reconnect_continues_sequence_and_marks_a_discontinuity() -> None:
    store = SegmentStore(window=10)
    first = _add(store, n=2, new_publish=True)
    store.end("pb")
    ended = store.playlist("pb")
    assert ended is not None and ended.endswith(b"#EXT-X-ENDLIST\n")
    second = _add(store, n=2, new_publish=True)
    playlist = store.playlist("pb")
    assert playlist is not None
    assert b"#EXT-X-ENDLIST" not in playlist
    assert _uris(playlist) == first + second
    assert [name.split("-")[0] for name in first + second] == ["0", "1", "2", "3"]
    lines = playlist.decode().splitlines()
    marker = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[marker + 3] == second[0]
    assert lines.count("#EXT-X-DISCONTINUITY") == 1


def test_first_publish_is_not_a_discontinuity() -> None:
    store = SegmentStore()
    _add(store, new_publish=True)
    playlist = store.playlist("pb")
    assert playlist is not None
    assert b"#EXT-X-DISCONTINUITY\n" not in playlist


def test_ended_stream_is_kept_for_the_ttl_then_evicted() -> None:
    clock = FakeClock()
    store = SegmentStore(ended_ttl=30.0, clock=clock)
    names = _add(store, n=2)
    store.end("pb")
    clock.now += 29.0
    assert store.evict_expired() == []
    assert store.segment("pb", names[0]) == b"data-0"
    clock.now += 2.0
    assert store.evict_expired() == ["pb"]
    assert store.playlist("pb") is None
    assert "pb" not in store


def test_live_streams_are_never_evicted() -> None:
    clock = FakeClock()
    store = SegmentStore(ended_ttl=1.0, clock=clock)
    _add(store)
    clock.now += 3600
    assert store.evict_expired() == []
    assert store.is_live("pb")


def test_end_grace_delays_the_endlist_and_a_reconnect_cancels_it() -> None:
    clock = FakeClock()
    store = SegmentStore(end_grace=5.0, clock=clock)
    _add(store, new_publish=True)
    store.end("pb")
    clock.now += 4.0
    store.evict_expired()
    assert b"#EXT-X-ENDLIST" not in (store.playlist("pb") or b"")
    _add(store, new_publish=True)
    clock.now += 10.0
    store.evict_expired()
    playlist = store.playlist("pb")
    assert playlist is not None
    assert b"#EXT-X-ENDLIST" not in playlist
    assert b"#EXT-X-DISCONTINUITY\n" in playlist


def test_end_grace_expiry_writes_the_endlist() -> None:
    clock = FakeClock()
    store = SegmentStore(end_grace=5.0, clock=clock)
    _add(store)
    store.end("pb")
    clock.now += 5.0
    store.evict_expired()
    playlist = store.playlist("pb")
    assert playlist is not None and playlist.endswith(b"#EXT-X-ENDLIST\n")


def test_a_republished_evicted_id_never_reuses_segment_names() -> None:
    clock = FakeClock()
    store = SegmentStore(ended_ttl=0.0, clock=clock)
    before = _add(store, n=2)
    store.end("pb")
    clock.now += 1
    store.evict_expired()
    after = _add(store, n=2)
    assert not set(before) & set(after)
    assert after[0].startswith("0-")  # a new state: sequence restarts, names differ by tag


def test_end_of_unknown_stream_is_ignored() -> None:
    store = SegmentStore()
    store.end("nope")
    assert "nope" not in store


def test_streams_are_independent() -> None:
    store = SegmentStore()
    a = _add(store, "a", n=2)
    b = _add(store, "b", n=1)
    assert store.segment("a", b[0]) is None
    assert store.segment("b", a[0]) is None
    assert store.stats().streams == 2


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        SegmentStore(window=0)
    with pytest.raises(ValueError):
        SegmentStore(ended_ttl=-1)
