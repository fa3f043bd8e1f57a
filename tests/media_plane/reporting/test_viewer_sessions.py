"""HLS and WHEP viewers counted by one mechanism, on an injected clock."""

from __future__ import annotations

from media_plane.media.protocol import MediaProtocol
from media_plane.reporting.viewer_sessions import ViewerChanges, ViewerSessions


def test_a_stateless_viewer_starts_with_its_first_request_and_ends_when_idle() -> None:
    viewers = ViewerSessions(idle_s=20.0, progress_every_s=30.0)
    viewers.delivered("pb", "10.0.0.1:4000", "ua", 100, now=0.0)
    viewers.delivered("pb", "10.0.0.1:4001", "ua", 50, now=2.0)  # same viewer, new port
    started = viewers.sweep(3.0)
    assert [s.protocol for s in started.started] == [MediaProtocol.HLS]
    assert viewers.viewers_of("pb") == 1
    ended = viewers.sweep(22.0)
    assert [(nbytes, watched) for _, nbytes, watched in ended.ended] == [(150, 2000)]
    assert viewers.count() == 0


def test_a_stateful_viewer_reports_its_start_and_end_at_once_and_progress_on_sweeps() -> None:
    seen: list[ViewerChanges] = []
    viewers = ViewerSessions(idle_s=20.0, progress_every_s=30.0, on_change=seen.append)
    sent = [0]
    viewers.opened(
        "w1",
        playback_id="pb",
        stream_id="s",
        client_addr="10.0.0.2",
        user_agent="ua",
        protocol=MediaProtocol.WHEP,
        bytes_sent=lambda: sent[0],
        now=0.0,
    )
    assert [s.session_id for s in seen[0].started] == ["w1"]
    viewers.delivered("pb", "10.0.0.1:4000", "ua", 10, now=0.0)
    assert viewers.viewers_of("pb") == 2 and viewers.count() == 2
    sent[0] = 1000
    assert viewers.sweep(10.0).progressed == []  # not due yet
    viewers.delivered("pb", "10.0.0.1:4000", "ua", 10, now=25.0)  # the HLS viewer stays
    progressed = viewers.sweep(30.0).progressed
    assert [(s.session_id, n, w) for s, n, w in progressed if s.stateful] == [("w1", 1000, 30_000)]
    viewers.closed("w1", bytes_sent=1500, reason="client_ended", now=40.0)
    [(session, nbytes, watched)] = seen[1].ended
    assert (session.end_reason, nbytes, watched) == ("client_ended", 500, 10_000)
    assert viewers.viewers_of("pb") == 1


def test_ending_all_ends_both_kinds() -> None:
    viewers = ViewerSessions(idle_s=20.0, progress_every_s=30.0)
    viewers.delivered("pb", "10.0.0.1:4000", "ua", 10, now=0.0)
    viewers.opened(
        "w1",
        playback_id="pb",
        stream_id="s",
        client_addr="10.0.0.2",
        user_agent="ua",
        protocol=MediaProtocol.WHEP,
        bytes_sent=lambda: 7,
        now=0.0,
    )
    changes = viewers.sweep(1.0, end_all=True)
    assert sorted(s.protocol for s, _, _ in changes.ended) == [
        MediaProtocol.HLS,
        MediaProtocol.WHEP,
    ]
    assert viewers.count() == 0
