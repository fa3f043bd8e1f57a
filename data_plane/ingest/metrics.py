"""Prometheus metrics of the ingest consumer."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter(
            "tidecast_ingest_batches", "Fetched batches written", registry=registry
        )
        self.inserted = Counter(
            "tidecast_ingest_events_inserted", "Events written to the warehouse", registry=registry
        )
        self.duplicates = Counter(
            "tidecast_ingest_events_duplicate",
            "Events skipped because the warehouse already held them",
            registry=registry,
        )
        self.dead_letters = Counter(
            "tidecast_ingest_dead_letters",
            "Messages sent to the dead-letter topic",
            registry=registry,
        )
        self.commit_failures = Counter(
            "tidecast_ingest_commit_failures",
            "Offset commits that failed after a write (the batch is redelivered, then skipped)",
            registry=registry,
        )
        self.write_failures = Counter(
            "tidecast_ingest_write_failures",
            "Failed warehouse or bus writes (retried)",
            registry=registry,
        )
