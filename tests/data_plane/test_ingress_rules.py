"""The ingress's pure rules: which events are accepted, how they become bus messages."""

from __future__ import annotations

import pytest
from tidecast.events.v1 import events_pb2 as ev
from tidecast.events.v1.ingress_pb2 import PublishEventsRequest

from data_plane.bus.base import KINDS_HEADER, TENANT_HEADER
from data_plane.ingress.batching import MAX_MESSAGE_EVENTS, to_messages
from data_plane.ingress.event_spans import event_spans, joined
from data_plane.ingress.recent_ids import RecentIds
from data_plane.ingress.request_judging import (
    JudgedRequest,
    judge_request,
    owned_groups,
    streams_to_resolve,
)
from data_plane.ingress.validation import MAX_EVENT_BYTES, Rejection, all_valid_ids, check_owner
from tests.data_plane.factory import event, node_health, now_ms, uuid7, viewer

OWNERS = {"stream-1": "tenant-a", "stream-2": "tenant-b"}
DAY_MS = 24 * 3600 * 1000


def judged_of(events: list[ev.Event]) -> JudgedRequest:
    now = now_ms()
    request = PublishEventsRequest(events=events).SerializeToString()
    return judge_request(request, "node-1", now, now - DAY_MS, 10_000)


def verdict_of(events: list[ev.Event]) -> dict[int, Rejection | None]:
    groups, rejected = owned_groups(judged_of(events), OWNERS)
    answer: dict[int, Rejection | None] = {i: None for group in groups for i in group.indexes}
    answer.update(dict(rejected))
    return answer


def test_well_formed_events_of_every_kind_are_accepted() -> None:
    events = [
        event("stream_started", session_id="p1"),
        event("ingest_health", session_id="p1", bitrate_bps=2_500_000, fps=30.0),
        viewer("viewer_started", "v1"),
        viewer("viewer_progress", "v1", bytes_sent=1000),
        viewer("viewer_ended", "v1"),
        event("stream_ended", session_id="p1"),
        node_health(cpu_percent=12.5),
        event("balancer_decision", playback_id="pb"),
    ]
    assert verdict_of(events) == {i: None for i in range(len(events))}


def mixed_batch() -> tuple[list[ev.Event], dict[int, Rejection | None]]:
    """A well-formed event, then one event per reason (and two node events)."""
    good = viewer("viewer_started", "v1")
    no_payload = ev.Event()
    no_payload.CopyFrom(good)
    no_payload.ClearField("viewer_started")
    no_payload.event_id = uuid7()  # its own id: a repeated one would be a duplicate
    bad_id = viewer("viewer_started", "v2", event_id="not-a-uuid")
    no_time = viewer("viewer_started", "v3")
    no_time.ClearField("occurred_at")
    cases = {
        1: (no_payload, Rejection.NO_PAYLOAD),
        2: (bad_id, Rejection.MALFORMED_ID),
        3: (no_time, Rejection.MISSING_TIME),
        4: (viewer("viewer_started", "v4", at_ms=now_ms() - 2 * DAY_MS), Rejection.TOO_OLD),
        5: (viewer("viewer_started", "v5", at_ms=now_ms() + 3600_000), Rejection.IN_FUTURE),
        6: (viewer("viewer_started", "v6", node_id="node-2"), Rejection.WRONG_NODE),
        7: (viewer("viewer_started", "v7", tenant_id=""), Rejection.MISSING_STREAM),
        8: (viewer("viewer_started", "v8", stream_id="unknown"), Rejection.UNKNOWN_STREAM),
        9: (viewer("viewer_started", "v9", tenant_id="tenant-b"), Rejection.FOREIGN_TENANT),
        10: (viewer("viewer_started", "v", user_agent="u" * 3000), Rejection.TOO_LARGE),
        11: (node_health(), None),
        12: (event("node_health", tenant_id="tenant-a", stream_id=""), None),
    }
    cases[12] = (cases[12][0], Rejection.NODE_EVENT_WITH_TENANT)
    cases[13] = (viewer("viewer_started", "v13", stream_id="s" * 65), Rejection.FIELD_TOO_LONG)
    events = [good] + [e for e, _ in cases.values()]
    return events, {0: None} | {i: reason for i, (_, reason) in cases.items()}


def test_each_malformed_event_is_refused_with_its_reason_and_the_rest_accepted() -> None:
    events, expected = mixed_batch()
    assert verdict_of(events) == expected


def test_only_the_streams_of_well_formed_stream_events_are_resolved() -> None:
    events = [
        viewer("viewer_started", "a"),
        node_health(),
        event("stream_started", stream_id="x" * 65),
    ]
    assert streams_to_resolve(judged_of(events)) == {"stream-1"}


def test_messages_group_events_per_stream_in_order_with_the_tenant_and_kinds_headers() -> None:
    events = [
        viewer("viewer_started", "a"),
        viewer("viewer_started", "b", stream_id="stream-2", tenant_id="tenant-b"),
        viewer("viewer_progress", "a"),
        node_health("node-1"),
    ]
    messages = to_messages(events)
    by_key = {m.key: m for m in messages}
    assert set(by_key) == {b"stream-1", b"stream-2", b"node-1"}
    first = ev.EventBatch.FromString(by_key[b"stream-1"].value)
    assert [e.event_id for e in first.events] == [events[0].event_id, events[2].event_id]
    assert dict(by_key[b"stream-1"].headers) == {
        TENANT_HEADER: b"tenant-a",
        KINDS_HEADER: b"viewer_progress,viewer_started",
    }
    assert dict(by_key[b"stream-2"].headers) == {
        TENANT_HEADER: b"tenant-b",
        KINDS_HEADER: b"viewer_started",
    }
    assert dict(by_key[b"node-1"].headers) == {TENANT_HEADER: b"", KINDS_HEADER: b"node_health"}


def test_a_burst_of_one_stream_is_split_into_bounded_messages() -> None:
    events = [viewer("viewer_progress", f"s{i}") for i in range(MAX_MESSAGE_EVENTS * 2 + 1)]
    messages = to_messages(events)
    sizes = [len(ev.EventBatch.FromString(m.value).events) for m in messages]
    assert sizes == [MAX_MESSAGE_EVENTS, MAX_MESSAGE_EVENTS, 1]
    replay = [e.event_id for m in messages for e in ev.EventBatch.FromString(m.value).events]
    assert replay == [e.event_id for e in events]


def test_recent_ids_forget_the_oldest_generation_beyond_capacity() -> None:
    recent = RecentIds(capacity=3)
    recent.remember(["a", "b", "c"])
    recent.remember(["d"])
    assert all(i in recent for i in "abcd")
    assert recent.known(["a", "d", "z"]) == {"a", "d"}
    recent.remember(["e", "f"])
    assert "a" not in recent and all(i in recent for i in "def")
    assert len(recent) <= 2 * 3


def judged_verdict(request: bytes) -> tuple[JudgedRequest, dict[int, Rejection | None]]:
    """What the worker path decides: shape on the worker, owners per group on the loop."""
    now = now_ms()
    judged = judge_request(request, "node-1", now, now - DAY_MS, 10_000)
    answer: dict[int, Rejection | None] = dict(judged.rejected)
    for group in judged.groups:
        owner_rejection = (
            None if group.node_scoped else check_owner(group.tenant_id, OWNERS.get(group.stream_id))
        )
        answer.update((index, owner_rejection) for index in group.indexes)
    return judged, answer


#: An unknown field after the events: the request parses, but is not read span by span.
UNKNOWN_FIELD = b"\x10\x01"


@pytest.mark.parametrize("read", ["span by span", "by the parser"])
def test_a_request_judged_on_a_worker_gets_the_verdict_judge_gives(read: str) -> None:
    events, expected = mixed_batch()
    events += [
        viewer("viewer_progress", "b", stream_id="stream-2", tenant_id="tenant-b"),
        viewer("viewer_progress", "v1"),
    ]
    expected |= {len(events) - 2: None, len(events) - 1: None}
    request = PublishEventsRequest(events=events).SerializeToString()
    if read == "by the parser":
        request += UNKNOWN_FIELD
    assert (event_spans(request) is None) == (read == "by the parser")
    judged, answer = judged_verdict(request)
    assert answer == verdict_of(events) == expected
    assert judged.ids == [e.event_id for e in events] and judged.repeated == 0
    # Each group's values hold its events, in request order, one stream and tenant each.
    for group in judged.groups:
        replay = [e for v in group.values for e in ev.EventBatch.FromString(v).events]
        assert replay == [events[i] for i in group.indexes]
        assert {(e.stream_id, e.tenant_id) for e in replay} == {(group.stream_id, group.tenant_id)}
        assert group.kinds == {e.WhichOneof("payload") for e in replay}


def test_a_worker_counts_repeated_ids_once_and_splits_bursts() -> None:
    burst = [viewer("viewer_progress", f"s{i}") for i in range(MAX_MESSAGE_EVENTS + 1)]
    request = PublishEventsRequest(events=[*burst, burst[0], burst[1]]).SerializeToString()
    judged, answer = judged_verdict(request)
    assert judged.repeated == 2 and set(answer) == set(range(len(burst)))
    (group,) = judged.groups
    assert [len(ev.EventBatch.FromString(v).events) for v in group.values] == [
        MAX_MESSAGE_EVENTS,
        1,
    ]


def test_event_spans_hold_each_event_as_an_event_batch_holds_it() -> None:
    # Sizes around the one- and two-byte length boundaries, and a large one.
    events = [
        viewer("viewer_started", "v", user_agent="u" * size) for size in (0, 40, 80, 300, 5000)
    ]
    request = PublishEventsRequest(events=events).SerializeToString()
    spans = event_spans(request)
    assert spans is not None and [end - body for _, body, end in spans] == [
        e.ByteSize() for e in events
    ]
    assert spans[0][0] == 0 and spans[-1][2] == len(request)
    assert ev.EventBatch.FromString(joined(request, spans, [3, 0])).events == [
        events[3],
        events[0],
    ]
    assert event_spans(b"") == []
    for cut in (1, 2, 50, len(request) - 1):
        assert event_spans(request[:cut]) is None  # truncated in a tag, length or event
    assert event_spans(request + UNKNOWN_FIELD) is None
    assert event_spans(b"\x0a\xff\xff\xff\xff\xff\xff\x01") is None  # absurd length


def test_ids_are_checked_in_one_pass_exactly_as_one_by_one() -> None:
    good = uuid7()
    assert all_valid_ids([good, uuid7().upper()]) and all_valid_ids([])
    for bad in ("", "not-a-uuid", good + "\n" + good, good[:-1] + "g", good + "0", " " + good):
        assert not all_valid_ids([good, bad]), bad
    assert not all_valid_ids([good + "\n" + good, ""])


def test_an_event_too_large_is_refused_whether_sized_by_span_or_by_the_parser() -> None:
    base = viewer("viewer_started", "v")
    fits = ev.Event()
    fits.CopyFrom(base)
    # Length prefixes grow with the text: find the text that makes the limit exactly.
    fits.viewer_started.user_agent = "u" * (MAX_EVENT_BYTES - base.ByteSize() - 4)
    while fits.ByteSize() < MAX_EVENT_BYTES:
        fits.viewer_started.user_agent += "u"
    assert fits.ByteSize() == MAX_EVENT_BYTES
    too_large = ev.Event()
    too_large.CopyFrom(fits)
    too_large.event_id = uuid7()
    too_large.viewer_started.user_agent += "u"
    request = PublishEventsRequest(events=[fits, too_large]).SerializeToString()
    for body in (request, request + UNKNOWN_FIELD):
        _, answer = judged_verdict(body)
        assert answer == {0: None, 1: Rejection.TOO_LARGE}


def test_a_worker_flags_malformed_and_oversized_requests() -> None:
    assert judge_request(b"\xff garbage", "node-1", 0, 0, 10).malformed
    request = PublishEventsRequest(
        events=[viewer("viewer_started", f"v{i}") for i in range(11)]
    ).SerializeToString()
    judged = judge_request(request, "node-1", now_ms(), 0, 10)
    assert judged.too_many == 11 and not judged.groups


def test_events_whose_ids_the_ingress_produced_already_count_as_duplicates() -> None:
    events = [viewer("viewer_started", f"v{i}") for i in range(4)]
    now = now_ms()
    request = PublishEventsRequest(events=[*events, events[2]]).SerializeToString()
    known = {events[0].event_id, events[3].event_id}
    judged = judge_request(request, "node-1", now, now - DAY_MS, 10_000, known)
    assert judged.repeated == 3
    assert [group.indexes for group in judged.groups] == [[1, 2]]
    assert ev.EventBatch.FromString(judged.groups[0].values[0]).events == events[1:3]
