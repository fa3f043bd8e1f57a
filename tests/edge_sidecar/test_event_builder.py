import uuid

from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from edge_sidecar.event_builder import build_event, hash_ip, uuid7
from media_plane.edge_engine import EngineEvent, EngineEventKind


def test_uuid7_is_version_7_and_time_ordered() -> None:
    first, second = uuid7(), uuid7()
    assert uuid.UUID(first).version == 7
    assert first[:13] <= second[:13]


def test_client_ip_is_hashed_without_port_and_salted() -> None:
    assert hash_ip("10.0.0.1:5000", "s") == hash_ip("10.0.0.1:6000", "s")
    assert hash_ip("10.0.0.1:5000", "s") != hash_ip("10.0.0.1:5000", "other")
    assert "10.0.0.1" not in hash_ip("10.0.0.1", "s")


def test_stream_lifecycle_events_carry_tenant_node_and_payload() -> None:
    started = build_event(
        EngineEvent(
            EngineEventKind.STREAM_STARTED,
            "stream-1",
            1_700_000_000.5,
            {
                "session_id": "sess",
                "protocol": "rtmp",
                "client_addr": "127.0.0.1:5555",
                "video_codec": "h264",
                "width": 1280,
                "height": 720,
                "audio_codec": "aac",
                "audio_sample_rate": 48000,
                "audio_channels": 2,
            },
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
    assert started.occurred_at.ToNanoseconds() == 1_700_000_000_500_000_000
    assert started.stream_started.client_ip_hash == hash_ip("127.0.0.1", "s")

    ended = build_event(
        EngineEvent(
            EngineEventKind.STREAM_ENDED,
            "stream-1",
            1_700_000_010.0,
            {
                "session_id": "sess",
                "protocol": "rtmp",
                "reason": "publisher_lost",
                "duration_ms": 9500,
                "bytes_in": 123,
            },
        ),
        node_id="node-1",
        tenant_id="tenant-1",
        salt="s",
    )
    assert ended is not None
    assert ended.stream_ended.reason == ev.END_REASON_PUBLISHER_LOST
    assert ended.stream_ended.bytes_in == 123
    assert ended.event_id != started.event_id


def test_denied_publishes_are_not_analytics_events() -> None:
    assert (
        build_event(
            EngineEvent(EngineEventKind.PUBLISH_DENIED, "", 0.0, {}),
            node_id="n",
            tenant_id="",
            salt="s",
        )
        is None
    )
