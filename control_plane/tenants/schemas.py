from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from control_plane.http.schemas import DisplayName, RequestModel
from control_plane.tenants.models import TenantStatus


class TenantCreate(RequestModel):
    name: DisplayName


class TenantUpdate(RequestModel):
    name: DisplayName | None = None
    #: Only a platform operator may change the status.
    status: TenantStatus | None = None


class TenantPublic(BaseModel):
    id: str
    name: str
    status: TenantStatus
    created_at: datetime
