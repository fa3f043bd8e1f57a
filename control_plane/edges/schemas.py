from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from control_plane.edges.status import NodeStatus
from control_plane.http.schemas import RequestModel


class ClusterCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    region: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")


class ClusterPublic(BaseModel):
    id: str
    name: str
    region: str
    created_at: datetime


class EnrollmentTokenCreate(RequestModel):
    ttl_seconds: int = Field(default=3600, ge=1)


class EnrollmentTokenPublic(BaseModel):
    #: One-shot; shown only in this response.
    token: str
    cluster_id: str
    expires_at: datetime


class NodePublic(BaseModel):
    id: str
    cluster_id: str
    hostname: str
    region: str
    lat: float
    lon: float
    rtmp_url: str
    http_url: str
    status: NodeStatus
    enrolled_at: datetime
    last_heartbeat_at: datetime | None
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    bandwidth_in_bps: int
    bandwidth_out_bps: int
    bandwidth_capacity_bps: int
    streams_carried: int
    viewers: int
    version: str
