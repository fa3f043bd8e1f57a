from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from control_plane.http.schemas import RequestModel
from control_plane.tenants.models import TenantStatus


class TenantCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)


class TenantUpdate(RequestModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    #: Only a platform operator may change the status.
    status: TenantStatus | None = None


class TenantPublic(BaseModel):
    id: str
    name: str
    status: TenantStatus
    created_at: datetime
