"""Data-plane settings, read once from the environment (DATA_PLANE_*) by the entry point."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BusBackend(StrEnum):
    #: In-process bus: single node, one process.
    MEMORY = "memory"
    #: Any Kafka-protocol cluster, through aiokafka.
    KAFKA = "kafka"


class WarehouseBackend(StrEnum):
    #: The ClickHouse engine in-process (chDB): single node, one process owns the directory.
    CHDB = "chdb"
    #: A ClickHouse server or cluster over HTTP, through clickhouse-connect.
    CLICKHOUSE = "clickhouse"


class DataPlaneSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DATA_PLANE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    bus: BusBackend = BusBackend.MEMORY
    #: Kafka bootstrap servers, comma separated (bus=kafka).
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: Under load, concurrent sends to the bus leave as one produce at most this often, so
    #: the broker stores fewer, larger record batches (Kafka's linger.ms; an idle producer
    #: sends at once).
    kafka_linger_ms: int = Field(default=20, ge=0, le=1000)
    #: The topic every accepted event goes to (key = stream id, header tenant_id).
    events_topic: str = "analytics_events"
    #: Where messages the ingest cannot decode go, with the error in a header.
    dead_letter_topic: str = "analytics_events_dlq"
    #: Partitions of the events topic when the data plane creates it.
    events_partitions: int = Field(default=6, ge=1)
    #: Consumer group of the ingest into the warehouse.
    ingest_group: str = "analytics-ingest"

    warehouse: WarehouseBackend = WarehouseBackend.CHDB
    #: chDB data directory (warehouse=chdb).
    chdb_path: Path = Path("tidecast-analytics")
    #: ClickHouse HTTP URL, e.g. http://user:password@host:8123/tidecast (warehouse=clickhouse).
    clickhouse_url: str = "http://127.0.0.1:8123/default"
    #: Raw events older than this are dropped by the warehouse (TTL).
    raw_retention_days: int = Field(default=30, ge=1)

    #: The control plane's gRPC address (Directory service), host:port.
    control_target: str = "127.0.0.1:50051"
    #: A platform API token the data plane presents to the control plane.
    control_token: SecretStr = SecretStr("")
    control_timeout_s: float = Field(default=2.0, gt=0)

    ingress_host: str = "127.0.0.1"
    ingress_port: int = 50061
    #: Events per PublishEvents call; larger batches are refused whole.
    ingress_max_batch_events: int = Field(default=10_000, ge=1)
    #: Request size limit of the ingress, bytes.
    ingress_max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    #: Response size limit of the ingress, bytes (a response names each refused event).
    ingress_max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: Worker processes that judge requests (parsing, per-event checks, grouping into bus
    #: messages) beside the ingress's event loop; 0 judges on the loop.
    ingress_workers: int = Field(default=1, ge=0, le=64)

    #: Ingest batches: at most this many messages per fetch ...
    ingest_max_records: int = Field(default=2000, ge=1)
    #: ... a fetch waits this long at most for a first message (an idle consumer then
    #: sees to its other work: the viewer counts, stopping) ...
    ingest_max_wait_ms: int = Field(default=200, ge=1)
    #: ... and, under load, writes start at most this often unless three fetches' worth of
    #: messages waits: a write's fixed cost in the warehouse (planning, a part in every
    #: table, merges) is shared by more events. An idle ingest writes a message at once.
    ingest_min_write_interval_ms: int = Field(default=500, ge=0, le=10_000)
    #: Worker processes that decode fetched messages into warehouse rows, beside the
    #: consumer's event loop; 0 decodes on the loop itself (one process, one core).
    ingest_decode_workers: int = Field(default=1, ge=0, le=64)
    #: Let the warehouse's engine decode and write the messages itself when it can (chDB
    #: reads the protobuf in C++, see warehouse/engine_decoding.py); the workers above then
    #: serve only a ClickHouse server. A batch the engine refuses is decoded on the loop.
    ingest_decode_in_engine: bool = True
    #: How often the ingest writes the per-minute viewer counts of the minutes it wrote
    #: events for: the viewer series trails the events by about this much.
    ingest_count_viewers_every_ms: int = Field(default=1000, ge=100)

    api_host: str = "127.0.0.1"
    api_port: int = 8090
    #: Upper bound on the points a time-series query may return.
    api_max_points: int = Field(default=10_000, ge=1)
    #: Messages queued for one WebSocket client before it is dropped as too slow.
    realtime_client_queue: int = Field(default=256, ge=1)
    #: Stream ids one realtime `subscribe` message may name.
    realtime_max_subscribe_streams: int = Field(default=1000, ge=1)
    #: A viewer session with no event for this long no longer counts as watching.
    viewer_idle_timeout_s: float = Field(default=60.0, gt=0)
