from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, utcnow


class NodeState(StrEnum):
    ACTIVE = "active"
    DRAINING = "draining"


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    region: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    used_by_node_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("clusters.id", ondelete="CASCADE"), index=True
    )
    hostname: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(64))
    lat: Mapped[float] = mapped_column(Float, default=0.0)
    lon: Mapped[float] = mapped_column(Float, default=0.0)
    rtmp_url: Mapped[str] = mapped_column(String(255), default="")
    http_url: Mapped[str] = mapped_column(String(255), default="")
    bandwidth_capacity_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[str] = mapped_column(String(64), default="")
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=NodeState.ACTIVE)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    memory_used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    memory_total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bandwidth_in_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    bandwidth_out_bps: Mapped[int] = mapped_column(BigInteger, default=0)
    streams_carried: Mapped[int] = mapped_column(Integer, default=0)
    viewers: Mapped[int] = mapped_column(Integer, default=0)
