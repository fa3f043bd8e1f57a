"""Prometheus metrics of an edge node, on a registry the sidecar owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.streams = Gauge(
            "tidecast_edge_streams", "Live streams published on this edge", registry=self.registry
        )
        self.viewers = Gauge(
            "tidecast_edge_viewers", "Viewers on this edge", registry=self.registry
        )
        self.bytes_in = Gauge(
            "tidecast_edge_bytes_in",
            "Bytes received from publishers since start",
            registry=self.registry,
        )
        self.bytes_out = Gauge(
            "tidecast_edge_bytes_out", "Bytes sent to viewers since start", registry=self.registry
        )
        self.webrtc_sessions = Gauge(
            "tidecast_edge_webrtc_sessions",
            "WebRTC sessions open, by role (publish: WHIP, play: WHEP)",
            ["role"],
            registry=self.registry,
        )
        self.webrtc_sessions_ended = Gauge(
            "tidecast_edge_webrtc_sessions_ended",
            "WebRTC sessions ended since start, by reason (peer_lost: a vanished peer "
            "released by ICE consent checks; connect_timeout: never connected)",
            ["reason"],
            registry=self.registry,
        )
        self.publish_denials = Counter(
            "tidecast_edge_publish_denials_total",
            "Publishes refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.play_denials = Counter(
            "tidecast_edge_play_denials_total",
            "Plays refused, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.events_spooled = Counter(
            "tidecast_edge_events_spooled_total",
            "Events written to the spool, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.spool_pending = Gauge(
            "tidecast_edge_spool_pending_events",
            "Events in the spool not yet acknowledged",
            registry=self.registry,
        )
        self.spool_dropped_samples = Gauge(
            "tidecast_edge_spool_dropped_samples",
            "Health samples dropped to keep the spool within its disk budget",
            registry=self.registry,
        )
        self.heartbeat_failures = Counter(
            "tidecast_edge_heartbeat_failures_total",
            "Heartbeats that did not reach the control plane",
            registry=self.registry,
        )
