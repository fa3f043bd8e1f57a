from pathlib import Path

import pytest

from edge_sidecar.spool import EventSpool, RecordClass


def test_appended_records_read_back_in_order(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    for i in range(5):
        spool.append(f"event-{i}".encode())
    records = spool.read(10)
    assert [r.payload for r in records] == [f"event-{i}".encode() for i in range(5)]
    assert [r.sequence for r in records] == list(range(5))
    spool.close()


def test_ack_hides_records_and_survives_reopen(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    for i in range(4):
        spool.append(bytes([i]))
    spool.ack(2)
    spool.close()
    reopened = EventSpool(tmp_path)
    assert [r.payload for r in reopened.read(10)] == [b"\x02", b"\x03"]
    assert reopened.pending() == 2
    assert reopened.append(b"\x04") == 4
    reopened.close()


def test_torn_tail_is_cut_on_reopen(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    spool.append(b"complete")
    spool.close()
    segment = next(tmp_path.glob("*.log"))
    with segment.open("ab") as handle:
        handle.write(b"\x00\x00\x00\x10garbage")  # a header promising 16 bytes, then a crash
    reopened = EventSpool(tmp_path)
    assert [r.payload for r in reopened.read(10)] == [b"complete"]
    reopened.append(b"after")
    assert [r.payload for r in reopened.read(10)] == [b"complete", b"after"]
    reopened.close()


def test_segments_rotate_and_spent_ones_are_deleted(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, segment_bytes=64)
    for i in range(20):
        spool.append(bytes(40) + bytes([i]), RecordClass.SAMPLE)
    assert len(list(tmp_path.glob("*.log"))) > 3
    spool.ack(18)
    assert len(list(tmp_path.glob("*.log"))) <= 2
    assert [r.sequence for r in spool.read(10)] == [18, 19]
    assert all(r.record_class is RecordClass.SAMPLE for r in spool.read(10))
    spool.close()


def test_oversized_event_is_refused(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    with pytest.raises(ValueError):
        spool.append(bytes(2 * 1024 * 1024))
    assert spool.pending() == 0
    spool.close()


def test_over_budget_drops_oldest_health_samples_but_keeps_lifecycle_events(
    tmp_path: Path,
) -> None:
    spool = EventSpool(tmp_path, segment_bytes=1000, max_bytes=3000)
    kinds: dict[int, RecordClass] = {}
    for i in range(60):
        record_class = RecordClass.KEEP if i % 5 == 0 else RecordClass.SAMPLE
        kinds[spool.append(bytes(80) + bytes([i]), record_class)] = record_class
    assert spool.disk_bytes() <= 3000
    assert spool.dropped_samples > 0
    survivors = spool.read(1000)
    sequences = [r.sequence for r in survivors]
    assert sequences == sorted(sequences)
    kept = {s for s, c in kinds.items() if c is RecordClass.KEEP}
    assert kept <= set(sequences), "a lifecycle event was dropped"
    # The newest samples survive: dropping starts with the oldest segments.
    assert max(sequences) == 59
    assert len(survivors) + spool.dropped_samples == 60
    spool.close()


def test_only_keep_records_may_exceed_the_budget(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, segment_bytes=500, max_bytes=1000)
    for i in range(40):
        spool.append(bytes(60) + bytes([i]), RecordClass.KEEP)
    assert spool.dropped_samples == 0
    assert spool.over_budget > 0
    assert len(spool.read(100)) == 40
    spool.close()


def test_sequences_survive_dropping_and_reopening(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, segment_bytes=400, max_bytes=900)
    for i in range(30):
        spool.append(bytes(50), RecordClass.SAMPLE if i % 2 else RecordClass.KEEP)
    spool.ack(10)
    spool.close()
    reopened = EventSpool(tmp_path, segment_bytes=400, max_bytes=900)
    assert reopened.next_sequence == 30
    records = reopened.read(100)
    assert all(r.sequence >= 10 for r in records)
    assert reopened.append(b"x") == 30
    reopened.close()
