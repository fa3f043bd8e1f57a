from edge_sidecar.heartbeat import BandwidthMeter, NodePlace, build_heartbeat
from media_plane.edge_engine import EngineStats, MediaProtocol, StreamStats


def test_bandwidth_is_bits_per_second_between_samples() -> None:
    now = [0.0]
    meter = BandwidthMeter(clock=lambda: now[0])
    assert meter.sample(1000, 5000) == (0, 0)
    now[0] = 2.0
    assert meter.sample(3000, 9000) == (8000, 16000)


def test_heartbeat_lists_streams_as_origin_with_viewers() -> None:
    stats = EngineStats(
        streams=[
            StreamStats(
                "s1", "p1", MediaProtocol.RTMP, viewers=3, bytes_in=10, ingest_bitrate_bps=2_000_000
            )
        ],
        viewers=3,
        bytes_in=10,
        bytes_out=20,
    )
    request = build_heartbeat(
        NodePlace("eu", 1.5, 2.5),
        stats,
        cpu_percent=12.5,
        memory_used=100,
        memory_total=1000,
        bandwidth_in_bps=1,
        bandwidth_out_bps=2,
    )
    assert request.streams_carried == 1
    assert request.viewers == 3
    assert request.streams[0].stream_id == "s1"
    assert request.streams[0].is_origin
    assert request.location.lat == 1.5


def test_a_publish_awaiting_media_holds_its_key_but_is_not_carried() -> None:
    stats = EngineStats(
        streams=[
            StreamStats(
                "s1", "p1", MediaProtocol.RTMP, viewers=2, bytes_in=10, ingest_bitrate_bps=1
            ),
            StreamStats(
                "s2",
                "p2",
                MediaProtocol.WHIP,
                viewers=0,
                bytes_in=0,
                ingest_bitrate_bps=0,
                live=False,
            ),
        ],
        viewers=2,
    )
    request = build_heartbeat(
        NodePlace("eu", 0.0, 0.0),
        stats,
        cpu_percent=0.0,
        memory_used=0,
        memory_total=1,
        bandwidth_in_bps=0,
        bandwidth_out_bps=0,
    )
    # Listed, so the control plane keeps the key on this node; not counted as live.
    assert [(s.stream_id, s.awaiting_media) for s in request.streams] == [
        ("s1", False),
        ("s2", True),
    ]
    assert request.streams_carried == 1
