"""Edge sidecar settings, read once from the environment (EDGE_*) and CLI flags."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSidecarSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EDGE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: The control plane's EdgeControl gRPC address, host:port.
    control_target: str = "127.0.0.1:50051"
    #: One-shot enrollment token; needed only until the node has credentials.
    enroll_token: SecretStr | None = None
    #: Node credentials and the event spool live here.
    state_dir: Path = Path.home() / ".tidecast-edge"

    hostname: str = Field(default_factory=socket.gethostname)
    region: str = "local"
    lat: float = 0.0
    lon: float = 0.0
    bandwidth_capacity_bps: int = 1_000_000_000

    #: Address every listener binds to.
    bind_host: str = "127.0.0.1"
    #: Host name viewers and broadcasters use to reach this edge.
    public_host: str = "127.0.0.1"
    rtmp_port: int = 1935
    http_port: int = 8088
    #: /healthz and /metrics of the sidecar itself.
    admin_port: int = 9102

    #: Target HLS segment duration, seconds.
    segment_duration_s: float = Field(default=2.0, gt=0.2, le=30)
    #: Upper bound on how long an allow decision is reused, whatever the control plane says.
    decision_cache_max_s: float = Field(default=10.0, ge=0)
    #: Deadline of each call to the control plane.
    control_timeout_s: float = Field(default=2.0, gt=0)
    #: Heartbeat interval until the control plane says otherwise.
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    #: An HLS viewer that sent no request for this long has left (its session ends).
    viewer_idle_s: float = Field(default=20.0, gt=0)
    #: How often a watching viewer's progress (bytes, time) is reported.
    viewer_progress_s: float = Field(default=30.0, gt=0)
    #: How often ingest health samples are emitted per live stream.
    health_interval_s: float = Field(default=10.0, gt=0)
    #: The data plane's EventIngress gRPC address, host:port; unset keeps events in the spool.
    ingress_target: str | None = None
    #: Events per batch sent to the ingress.
    ship_batch_events: int = Field(default=1000, ge=1, le=10_000)
    #: Disk budget of the event spool.
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Salt for hashing client IP addresses in events.
    ip_hash_salt: SecretStr = SecretStr("tidecast")
