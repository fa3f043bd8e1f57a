"""events_to_arrow: one row per event with the columns of the `events` table, per kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from data_plane.warehouse.event_columns import COLUMNS, PROTOCOLS, SCHEMA
from data_plane.warehouse.event_rows import events_to_arrow
from tests.data_plane.factory import event, node_health, viewer

AT_MS = 1_700_000_000_123


def only_row(e: ev.Event) -> dict[str, Any]:
    table = events_to_arrow([e])
    assert table.schema == SCHEMA
    rows: list[dict[str, Any]] = table.to_pylist()
    assert len(rows) == 1
    return rows[0]


def assert_filled(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """The expected columns hold their values and every other payload column its zero."""
    envelope = {"event_id", "tenant_id", "node_id", "stream_id", "kind", "occurred_at"}
    for name in COLUMNS:
        if name in envelope:
            continue
        want = expected.get(name, "" if pa.types.is_string(SCHEMA.field(name).type) else 0)
        assert row[name] == pytest.approx(want), name


def test_stream_started() -> None:
    source = event(
        "stream_started",
        tenant_id="t",
        stream_id="s",
        node_id="n",
        at_ms=AT_MS,
        session_id="p",
        protocol=common_pb2.MEDIA_PROTOCOL_WHIP,
        client_ip_hash="ip",
        media={
            "video_codec": "vp8",
            "width": 70_000,  # clamped to the UInt16 column
            "height": 480,
            "audio_codec": "opus",
            "audio_sample_rate": 48_000,
            "audio_channels": 300,  # clamped to the UInt8 column
        },
    )
    row = only_row(source)
    assert row["event_id"] == source.event_id
    assert (row["tenant_id"], row["stream_id"], row["node_id"], row["kind"]) == (
        "t",
        "s",
        "n",
        "stream_started",
    )
    assert row["occurred_at"] == datetime.fromtimestamp(AT_MS / 1000, UTC)
    assert_filled(
        row,
        {
            "session_id": "p",
            "protocol": "whip",
            "client_ip_hash": "ip",
            "video_codec": "vp8",
            "width": 65_535,
            "height": 480,
            "audio_codec": "opus",
            "audio_sample_rate": 48_000,
            "audio_channels": 255,
        },
    )


def test_stream_ended() -> None:
    row = only_row(
        event(
            "stream_ended",
            session_id="p",
            protocol=common_pb2.MEDIA_PROTOCOL_RTMP,
            reason=ev.END_REASON_NODE_STOPPED,
            duration_ms=9_000,
            bytes_in=1 << 40,
        )
    )
    assert_filled(
        row,
        {
            "session_id": "p",
            "protocol": "rtmp",
            "end_reason": "node_stopped",
            "duration_ms": 9_000,
            "bytes": 1 << 40,
        },
    )


def test_ingest_health() -> None:
    row = only_row(
        event(
            "ingest_health",
            session_id="p",
            bitrate_bps=2_500_000,
            fps=29.97,
            keyframe_interval_s=2.5,
            dropped_frames=4,
            interval_ms=5_000,
        )
    )
    assert_filled(
        row,
        {
            "session_id": "p",
            "bitrate_bps": 2_500_000,
            "fps": pytest.approx(29.97, rel=1e-6),
            "keyframe_interval_s": 2.5,
            "dropped_frames": 4,
        },
    )


def test_viewer_started() -> None:
    row = only_row(viewer("viewer_started", "v", client_ip_hash="h", user_agent="ua"))
    assert_filled(
        row, {"session_id": "v", "protocol": "hls", "client_ip_hash": "h", "user_agent": "ua"}
    )


def test_viewer_progress() -> None:
    row = only_row(
        viewer(
            "viewer_progress",
            "v",
            protocol=common_pb2.MEDIA_PROTOCOL_LL_HLS,
            bytes_sent=10,
            watched_ms=1_000,
        )
    )
    assert_filled(row, {"session_id": "v", "protocol": "ll-hls", "bytes": 10, "watched_ms": 1_000})


def test_viewer_ended() -> None:
    row = only_row(
        viewer(
            "viewer_ended",
            "v",
            protocol=common_pb2.MEDIA_PROTOCOL_WHEP,
            bytes_sent=5,
            watched_ms=500,
            duration_ms=1_500,
        )
    )
    assert_filled(
        row,
        {
            "session_id": "v",
            "protocol": "whep",
            "bytes": 5,
            "watched_ms": 500,
            "duration_ms": 1_500,
        },
    )


def test_node_health() -> None:
    row = only_row(
        node_health(
            cpu_percent=12.5,
            memory_used_bytes=1 << 33,
            bandwidth_in_bps=100,
            bandwidth_out_bps=200,
            streams=3,
            viewers=40,
        )
    )
    assert (row["tenant_id"], row["stream_id"]) == ("", "")
    assert_filled(
        row,
        {
            "cpu_percent": 12.5,
            "memory_used_bytes": 1 << 33,
            "bandwidth_in_bps": 100,
            "bandwidth_out_bps": 200,
            "node_streams": 3,
            "node_viewers": 40,
        },
    )


def test_balancer_decision() -> None:
    row = only_row(
        event(
            "balancer_decision",
            playback_id="pb",
            chosen_node_id="n2",
            score=0.25,
            candidates=4,
            client_ip_hash="ip",
            distance_km=120.5,
            requires_pull=True,
        )
    )
    assert_filled(
        row,
        {
            "playback_id": "pb",
            "chosen_node_id": "n2",
            "score": 0.25,
            "candidates": 4,
            "client_ip_hash": "ip",
            "distance_km": 120.5,
            "requires_pull": 1,
        },
    )


def test_every_protocol_has_a_name_and_unspecified_is_empty() -> None:
    assert PROTOCOLS[common_pb2.MEDIA_PROTOCOL_UNSPECIFIED] == ""
    named = {v for k, v in PROTOCOLS.items() if k != common_pb2.MEDIA_PROTOCOL_UNSPECIFIED}
    assert {"rtmp", "srt", "whip", "hls", "ll-hls", "whep"} <= named


def test_a_mixed_batch_keeps_every_event_once() -> None:
    events = [
        viewer("viewer_progress", "a", bytes_sent=1),
        event("ingest_health", bitrate_bps=5),
        viewer("viewer_progress", "b", bytes_sent=2),
        node_health(),
    ]
    table = events_to_arrow(events)
    assert table.num_rows == 4
    assert sorted(table["event_id"].to_pylist()) == sorted(e.event_id for e in events)
    by_id = {row["event_id"]: row for row in table.to_pylist()}
    assert by_id[events[2].event_id]["bytes"] == 2
    assert by_id[events[1].event_id]["bitrate_bps"] == 5


def test_no_events_is_an_empty_table_of_the_schema() -> None:
    table = events_to_arrow([])
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_an_ingestion_time_is_a_column_when_given() -> None:
    table = events_to_arrow([viewer("viewer_started", "v")] * 2, ingested_at_ms=AT_MS)
    assert table.column_names.index("ingested_at") == table.column_names.index("occurred_at") + 1
    assert table.schema.field("ingested_at").type == pa.timestamp("ms", tz="UTC")
    assert table["ingested_at"].to_pylist() == [datetime.fromtimestamp(AT_MS / 1000, UTC)] * 2
    assert "ingested_at" not in events_to_arrow([viewer("viewer_started", "v")]).column_names


def test_an_event_without_payload_is_a_caller_bug() -> None:
    empty = ev.Event(event_id="0190a5a4-0000-7000-8000-000000000000", tenant_id="t")
    with pytest.raises(ValueError, match="event 1 has no payload"):
        events_to_arrow([viewer("viewer_started", "v"), empty])


@pytest.mark.parametrize("bad", ["", "not-a-uuid", "0190a5a4-0000-7000-8000-00000000000", "x" * 36])
def test_an_unparsable_id_is_a_caller_bug(bad: str) -> None:
    events = [viewer("viewer_started", "v") for _ in range(3)]
    events[2].event_id = bad
    with pytest.raises(ValueError, match="event 2 has a malformed id"):
        events_to_arrow(events)


def test_upper_case_ids_are_accepted() -> None:
    source = viewer("viewer_started", "v")
    source.event_id = source.event_id.upper()
    assert events_to_arrow([source])["event_id"].to_pylist() == [source.event_id]
