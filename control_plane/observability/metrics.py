"""Prometheus metrics of the control plane, on a registry owned by the process wiring.

A registry per instance (not the global default) lets tests and the single-node launcher
run several planes in one process without name clashes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ControlPlaneMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.http_requests = Counter(
            "tidecast_control_http_requests_total",
            "REST requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "tidecast_control_http_request_duration_seconds",
            "REST request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.login_attempts = Counter(
            "tidecast_control_login_attempts_total",
            "Password sign-ins by outcome: succeeded, failed, throttled (refused unchecked)",
            ["outcome"],
            registry=self.registry,
        )
        self.grpc_decisions = Counter(
            "tidecast_control_edge_decisions_total",
            "AuthorizePublish / AuthorizePlay decisions by outcome and denial reason",
            ["rpc", "outcome", "reason"],
            registry=self.registry,
        )
        self.grpc_latency = Histogram(
            "tidecast_control_grpc_request_duration_seconds",
            "EdgeControl RPC latency",
            ["rpc", "code"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
        )
