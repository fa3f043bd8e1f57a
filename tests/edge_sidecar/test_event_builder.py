import uuid
from typing import Any

import pytest
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from edge_sidecar.control_client import PROTOCOLS
from edge_sidecar.event_builder import build_event, hash_ip, uuid7
from media_plane.edge_engine import (
    EngineEvent,
    IngestHealth,
    MediaInfo,
    MediaProtocol,
    PublishDenied,
    StreamEnded,
    StreamStarted,
    ViewerEnded,
    ViewerProgress,
    ViewerStarted,
)


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first, second = uuid7(), uuid7()
    assert uuid.UUID(first).version == 7
    assert first[:13] <= second[:13]


def test_client_ip_is_hashed_without_port_and_salted() -> None:
    assert hash_ip("10.0.0.1:5000", "s") == hash_ip("10.0.0.1:6000", "s")
    assert hash_ip("10.0.0.1:5000", "s") != hash_ip("10.0.0.1:5000", "other")
    assert "10.0.0.1" not in hash_ip("10.0.0.1", "s")


def test_every_engine_protocol_has_its_contract_value() -> None:
    for protocol in MediaProtocol:
        name = common_pb2.MediaProtocol.Name(PROTOCOLS[protocol])
        assert name == f"MEDIA_PROTOCOL_{protocol.name}"
    assert PROTOCOLS[MediaProtocol.WHEP] == common_pb2.MEDIA_PROTOCOL_WHEP


def test_stream_lifecycle_events_carry_tenant_node_and_payload() -> None:
    started = build_event(
        StreamStarted(
            stream_id="stream-1",
            occurred_at=1_700_000_000.5,
            session_id="sess",
            protocol=MediaProtocol.RTMP,
            client_addr="127.0.0.1:5555",
            media=MediaInfo("h264", 1280, 720, "aac", 48000, 2),
        ),
        node_id="node-1",
        tenant_id="tenant-1",
        salt="s",
    )
    assert started is not None
    assert (started.tenant_id, started.node_id, started.stream_id) == (
        "tenant-1",
        "node-1",
        "stream-1",
    )
    assert started.WhichOneof("payload") == "stream_started"
    assert started.stream_started.protocol == common_pb2.MEDIA_PROTOCOL_RTMP
    assert started.stream_started.media.width == 1280
    assert started.stream_started.media.audio_channels == 2
    assert started.occurred_at.ToNanoseconds() == 1_700_000_000_500_000_000
    assert started.stream_started.client_ip_hash == hash_ip("127.0.0.1", "s")

    ended = build_event(
        StreamEnded(
            stream_id="stream-1",
            occurred_at=1_700_000_010.0,
            session_id="sess",
            protocol=MediaProtocol.RTMP,
            reason="publisher_lost",
            duration_ms=9500,
            bytes_in=123,
        ),
        node_id="node-1",
        tenant_id="tenant-1",
        salt="s",
    )
    assert ended is not None
    assert ended.stream_ended.reason == ev.END_REASON_PUBLISHER_LOST
    assert ended.stream_ended.bytes_in == 123
    assert ended.event_id != started.event_id


_BASE: dict[str, Any] = {"stream_id": "s", "occurred_at": 1.0, "session_id": "v"}
_VIEWER: dict[str, Any] = {**_BASE, "protocol": MediaProtocol.WHEP, "playback_id": "pb"}


@pytest.mark.parametrize(
    ("event", "payload", "fields"),
    [
        (
            IngestHealth(
                **_BASE,
                bitrate_bps=2_500_000,
                fps=29.97,
                keyframe_interval_s=2.0,
                dropped_frames=0,
                interval_ms=10_000,
            ),
            "ingest_health",
            {"bitrate_bps": 2_500_000, "interval_ms": 10_000},
        ),
        (
            ViewerStarted(**_VIEWER, client_addr="10.0.0.1:4000", user_agent="ua"),
            "viewer_started",
            {"protocol": common_pb2.MEDIA_PROTOCOL_WHEP, "user_agent": "ua"},
        ),
        (
            ViewerProgress(**_VIEWER, bytes_sent=1000, watched_ms=30_000),
            "viewer_progress",
            {"protocol": common_pb2.MEDIA_PROTOCOL_WHEP, "bytes_sent": 1000},
        ),
        (
            ViewerEnded(**_VIEWER, bytes_sent=10, watched_ms=5, duration_ms=60_000),
            "viewer_ended",
            {"duration_ms": 60_000, "watched_ms": 5},
        ),
    ],
    ids=["health", "viewer-started", "viewer-progress", "viewer-ended"],
)
def test_each_kind_fills_its_payload(
    event: EngineEvent, payload: str, fields: dict[str, object]
) -> None:
    envelope = build_event(event, node_id="n", tenant_id="t", salt="s")
    assert envelope is not None and envelope.WhichOneof("payload") == payload
    message = getattr(envelope, payload)
    assert {name: getattr(message, name) for name in fields} == fields


def test_denied_publishes_are_not_analytics_events() -> None:
    denied = PublishDenied(
        stream_id="",
        occurred_at=0.0,
        protocol=MediaProtocol.RTMP,
        client_addr="1.2.3.4:5",
        reason="invalid_key",
    )
    assert build_event(denied, node_id="n", tenant_id="", salt="s") is None
