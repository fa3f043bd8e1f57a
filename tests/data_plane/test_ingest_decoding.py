"""Bus messages -> events; what cannot be decoded becomes a dead letter with its error."""

from __future__ import annotations

from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import BusMessage
from data_plane.ingest.decoding import decode, next_offsets
from tests.data_plane.factory import viewer


def message(value: bytes, tenant: bytes = b"tenant-a", offset: int = 0) -> BusMessage:
    return BusMessage(
        topic="t",
        partition=0,
        offset=offset,
        key=b"k",
        value=value,
        headers=(("tenant_id", tenant),),
    )


def test_good_batches_decode_and_bad_ones_are_dead_lettered_with_the_reason() -> None:
    good = ev.EventBatch(events=[viewer("viewer_started", "a"), viewer("viewer_ended", "a")])
    foreign = ev.EventBatch(events=[viewer("viewer_started", "b", tenant_id="tenant-b")])
    no_payload = ev.EventBatch(events=[ev.Event(event_id="0" * 36, tenant_id="tenant-a")])
    decoded = decode(
        [
            message(good.SerializeToString(), offset=1),
            message(b"\xff\xff garbage", offset=2),
            message(foreign.SerializeToString(), offset=3),
            message(ev.EventBatch().SerializeToString(), offset=4),
            message(no_payload.SerializeToString(), offset=5),
        ]
    )
    assert decoded.rows.column("event_id").to_pylist() == [e.event_id for e in good.events]
    errors = [dict(d.headers)["error"].decode() for d in decoded.dead_letters]
    assert len(errors) == 4
    assert errors[0].startswith("not an EventBatch")
    assert "tenant" in errors[1] and errors[2] == "empty EventBatch" and "payload" in errors[3]
    assert [dict(d.headers)["source"] for d in decoded.dead_letters] == [
        b"t/0/2",
        b"t/0/3",
        b"t/0/4",
        b"t/0/5",
    ]


def test_commit_offsets_are_one_past_the_last_message_of_each_partition() -> None:
    messages = [
        BusMessage("t", 0, 5, None, b""),
        BusMessage("t", 1, 9, None, b""),
        BusMessage("t", 0, 7, None, b""),
    ]
    offsets = {(tp.topic, tp.partition): o for tp, o in next_offsets(messages).items()}
    assert offsets == {("t", 0): 8, ("t", 1): 10}
