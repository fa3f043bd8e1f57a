from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from control_plane.http.schemas import DisplayName, RequestModel
from control_plane.principal import Role, Scope


class LoginRequest(RequestModel):
    email: str = Field(
        min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
    )
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPairPublic(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MeTenant(BaseModel):
    tenant_id: str
    role: Role


class MePublic(BaseModel):
    kind: str
    id: str
    platform_admin: bool
    tenants: list[MeTenant]
    scopes: list[Scope]


class ApiTokenCreate(RequestModel):
    name: DisplayName
    scopes: list[Scope] = Field(min_length=1, max_length=3)


class ApiTokenPublic(BaseModel):
    id: str
    tenant_id: str | None
    name: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    #: The secret token; shown only in this response.
    token: str


class MemberCreate(RequestModel):
    email: str = Field(
        min_length=3, max_length=320, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"
    )
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    role: Role


class MemberPublic(BaseModel):
    user_id: str
    email: str
    role: Role
    created_at: datetime
