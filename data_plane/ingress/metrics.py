"""Prometheus metrics of the event ingress."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class IngressMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter(
            "tidecast_ingress_batches",
            "PublishEvents calls by outcome",
            ["outcome"],
            registry=registry,
        )
        self.accepted = Counter(
            "tidecast_ingress_events_accepted", "Events put on the bus", registry=registry
        )
        self.duplicates = Counter(
            "tidecast_ingress_events_duplicate",
            "Events already put on the bus (retried batches)",
            registry=registry,
        )
        self.rejected = Counter(
            "tidecast_ingress_events_rejected",
            "Events refused, by reason",
            ["reason"],
            registry=registry,
        )
