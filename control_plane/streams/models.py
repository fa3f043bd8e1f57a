from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, utcnow


class Stream(Base):
    __tablename__ = "streams"
    __table_args__ = (
        # Keyset pages of a tenant's streams ("tenant_id = ? AND id > ? ORDER BY id") read
        # just the page from this index instead of sorting all the tenant's streams.
        Index("ix_streams_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    #: SHA-256 of the stream key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    playback_id: Mapped[str] = mapped_column(String(64), unique=True)
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    transcode_profile: Mapped[str] = mapped_column(String(64), default="")
    private_playback: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The node publishing the stream right now, as last authorized or reported.
    live_node_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    live_since: Mapped[datetime | None] = mapped_column(nullable=True)
