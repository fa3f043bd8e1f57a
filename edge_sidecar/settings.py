"""Edge sidecar settings, read once from the environment (EDGE_*) and CLI flags."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from media_plane.edge_engine import EngineSettings

_PLACEHOLDER_SALT = "tidecast"
_MIN_SALT_CHARS = 16


class EdgeSidecarSettings(EngineSettings, BaseSettings):
    """The sidecar's own settings, and every setting of the engine it hosts (inherited from
    `EngineSettings`, so each is declared once and read from EDGE_<NAME> like the rest:
    EDGE_RTMP_PORT, EDGE_ICE_HOST_ADDRESSES='["203.0.113.7"]', ...)."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: An edge serves WHIP and WHEP unless told not to.
    webrtc_enabled: bool = True

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

    #: Host name viewers and broadcasters use to reach this edge.
    public_host: str = "127.0.0.1"
    #: /healthz and /metrics of the sidecar itself.
    admin_port: int = 9102

    #: HLS segment duration, seconds, when the control plane's grant names none.
    segment_duration_s: float = Field(default=2.0, gt=0.2, le=30)
    #: Upper bound on how long an allow decision is reused, whatever the control plane says.
    decision_cache_max_s: float = Field(default=10.0, ge=0)
    #: Deadline of each call to the control plane.
    control_timeout_s: float = Field(default=2.0, gt=0)
    #: Heartbeat interval until the control plane says otherwise.
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    #: The data plane's EventIngress gRPC address, host:port; unset keeps events in the spool.
    ingress_target: str | None = None
    #: Events per batch sent to the ingress.
    ship_batch_events: int = Field(default=1000, ge=1, le=10_000)
    #: Disk budget of the event spool.
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    #: Salt for hashing client IP addresses in events. A known salt makes the hashes
    #: reversible by brute force over the address space, so outside development it must
    #: be a random value.
    ip_hash_salt: SecretStr = SecretStr(_PLACEHOLDER_SALT)
    #: "development" accepts the placeholder salt; anything else refuses it.
    environment: str = "development"

    @model_validator(mode="after")
    def _refuse_placeholder_salt(self) -> EdgeSidecarSettings:
        salt = self.ip_hash_salt.get_secret_value()
        if self.environment != "development" and (
            salt == _PLACEHOLDER_SALT or len(salt) < _MIN_SALT_CHARS
        ):
            raise ValueError(
                "EDGE_IP_HASH_SALT must be set to a random value of at least "
                f"{_MIN_SALT_CHARS} characters outside development"
            )
        return self

    def engine_settings(self) -> EngineSettings:
        """The hosted engine's settings: the inherited fields, with the ICE addresses it
        offers resolved."""
        values = {name: getattr(self, name) for name in EngineSettings.model_fields}
        values["ice_host_addresses"] = self.offered_ice_addresses()
        return EngineSettings(**values)

    def offered_ice_addresses(self) -> tuple[str, ...]:
        """The ICE host addresses the engine offers.

        Configured addresses win. Otherwise an edge bound to one specific address offers
        that address (loopback included: a single-node setup), and an edge bound to every
        interface leaves the choice to aioice (every address except loopback).
        """
        if self.ice_host_addresses:
            return self.ice_host_addresses
        try:
            bound = ipaddress.ip_address(self.bind_host)
        except ValueError:
            return ()
        return () if bound.is_unspecified else (str(bound),)
