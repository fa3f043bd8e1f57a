"""Control-plane settings, read once from the environment by the entry point."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret"}


class ControlPlaneSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONTROL_PLANE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    #: SQLAlchemy async URL: sqlite+aiosqlite:///path.db or postgresql+asyncpg://...
    database_url: str = "sqlite+aiosqlite:///tidecast-control.db"
    #: Signs access tokens, refresh tokens and playback tokens.
    signing_secret: SecretStr = SecretStr("change-me")
    #: "development" accepts placeholder secrets; anything else refuses them.
    environment: str = "development"

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051

    access_token_ttl_s: int = Field(default=900, gt=0)
    refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, gt=0)
    playback_token_max_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    enrollment_token_max_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    #: A node whose last heartbeat is older than this is stale.
    node_stale_after_s: float = Field(default=15.0, gt=0)
    heartbeat_interval_s: int = Field(default=5, gt=0)
    #: How long an edge may reuse an allow decision.
    decision_cache_ttl_ms: int = Field(default=5000, ge=0)
    #: The HLS segment length an edge packages a stream in, sent with each publish grant.
    segment_duration_ms: int = Field(default=2000, gt=0)
    #: Request bodies larger than this are refused with 413.
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    #: How long publish/play decisions and node credentials are answered from memory.
    #: Writes in this process clear the cache at once; with several control-plane
    #: replicas this bounds how long another replica may answer from stale data.
    hot_cache_ttl_s: float = Field(default=30.0, ge=0)
    #: PostgreSQL connections kept for direct reads (the busiest list pages), beside the
    #: engine's pool.
    direct_read_connections: int = Field(default=4, gt=0)
    #: An API token's last-used time is written at most this often.
    token_touch_interval_s: float = Field(default=60.0, ge=0)
    #: Sign-in throttling (`auth/login_throttle.py`): wrong passwords an account, and a
    #: client address (offices and carrier NATs share one, so it gets more), may send
    #: before each further one blocks sign-in for a doubling wait, from the base up to the
    #: cap. Failures older than the window are forgotten; at most `login_throttle_entries`
    #: accounts and addresses are tracked, the least recently failed forgotten first.
    login_free_failures_per_account: int = Field(default=5, ge=1)
    login_free_failures_per_address: int = Field(default=20, ge=1)
    login_backoff_base_s: float = Field(default=1.0, gt=0)
    login_backoff_max_s: float = Field(default=300.0, gt=0)
    login_failure_window_s: float = Field(default=900.0, gt=0)
    login_throttle_entries: int = Field(default=100_000, ge=1)

    #: Printed with new streams: where broadcasters push and viewers watch.
    public_rtmp_url: str = "rtmp://127.0.0.1:1935/live"
    public_playback_url: str = "http://127.0.0.1:8088"
    #: The edges' WHIP/WHEP signaling base.
    public_webrtc_url: str = "http://127.0.0.1:8089"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ControlPlaneSettings:
        secret = self.signing_secret.get_secret_value()
        if self.environment != "development" and (
            secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < 32
        ):
            raise ValueError(
                "CONTROL_PLANE_SIGNING_SECRET must be set to a random value of at least "
                "32 characters outside development"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
