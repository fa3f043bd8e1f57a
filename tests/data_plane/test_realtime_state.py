"""The realtime hub's live state: events in, updates out, idempotent under redelivery."""

from __future__ import annotations

from data_plane.realtime.live_state import LiveState
from tests.data_plane.factory import event, viewer


def test_viewer_counts_follow_sessions_and_ignore_redelivered_events() -> None:
    state = LiveState(idle_ms=60_000)
    started = [viewer("viewer_started", "a"), viewer("viewer_started", "b")]
    updates = state.apply(started, now_ms=1_000)
    assert [u.message for u in updates] == [
        {"type": "viewer_count", "stream_id": "stream-1", "viewers": 2}
    ]
    assert state.apply(started, now_ms=2_000) == []  # the bus delivered them again
    ended = state.apply([viewer("viewer_ended", "a")], now_ms=3_000)
    assert [u.message["viewers"] for u in ended] == [1]
    assert state.snapshot("tenant-a") == {
        "type": "snapshot",
        "streams": {"stream-1": {"live": False, "viewers": 1}},
    }
    assert state.snapshot("tenant-b") == {"type": "snapshot", "streams": {}}


def test_lifecycle_messages_are_sent_once_and_mark_the_stream_live() -> None:
    state = LiveState(idle_ms=60_000)
    started = event("stream_started", session_id="p1", media={"video_codec": "h264", "width": 1280})
    first = state.apply([started], now_ms=0)
    assert len(first) == 1 and first[0].message["type"] == "stream_started"
    assert first[0].message["width"] == 1280 and first[0].tenant_id == "tenant-a"
    assert state.apply([started], now_ms=0) == []
    assert state.snapshot("tenant-a")["streams"]["stream-1"]["live"] is True
    ended = state.apply([event("stream_ended", session_id="p1", duration_ms=5000)], now_ms=0)
    assert ended[0].message["type"] == "stream_ended" and ended[0].message["duration_ms"] == 5000


def test_idle_viewers_expire() -> None:
    state = LiveState(idle_ms=10_000)
    state.apply([viewer("viewer_started", "a")], now_ms=0)
    state.apply([viewer("viewer_progress", "b")], now_ms=8_000)
    updates = state.expire(now_ms=15_000)
    assert [u.message["viewers"] for u in updates] == [1]
    assert state.expire(now_ms=30_000)[0].message["viewers"] == 0
    assert state.snapshot("tenant-a")["streams"] == {}
