"""Who is calling and what they may do: pure rules, no I/O.

Every domain's routes check the caller with these rules, so they sit beside `errors.py`
rather than inside a domain; `auth/` turns credentials into a `Principal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from control_plane.errors import NotFoundError, PermissionDeniedError


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: frozenset(Scope),
    Role.ADMIN: frozenset(Scope),
    Role.VIEWER: frozenset({Scope.READ}),
}


class PrincipalKind(StrEnum):
    USER = "user"
    API_TOKEN = "api_token"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    #: The user's id or the API token's id.
    subject_id: str
    platform_admin: bool = False
    #: Tenant id -> role, for users.
    roles: dict[str, Role] = field(default_factory=dict)
    #: The tenant an API token belongs to (None for platform tokens and users).
    token_tenant_id: str | None = None
    token_scopes: frozenset[Scope] = frozenset()

    def scopes_for(self, tenant_id: str) -> frozenset[Scope] | None:
        """The scopes held on `tenant_id`, or None when the tenant is invisible."""
        if self.platform_admin:
            return frozenset(Scope)
        if self.kind is PrincipalKind.API_TOKEN:
            return self.token_scopes if self.token_tenant_id == tenant_id else None
        role = self.roles.get(tenant_id)
        return ROLE_SCOPES[role] if role is not None else None

    def require(self, tenant_id: str, scope: Scope) -> None:
        """Raise unless the caller holds `scope` on `tenant_id`.

        A tenant the caller cannot see is reported as not found, so nobody learns which
        tenant ids exist.
        """
        scopes = self.scopes_for(tenant_id)
        if scopes is None:
            raise NotFoundError("tenant not found")
        if scope not in scopes:
            raise PermissionDeniedError(f"this credential lacks the '{scope}' scope")

    def require_owner(self, tenant_id: str) -> None:
        self.require(tenant_id, Scope.ADMIN)
        if self.platform_admin:
            return
        if self.kind is PrincipalKind.API_TOKEN or self.roles.get(tenant_id) is not Role.OWNER:
            raise PermissionDeniedError("only an owner of the tenant may do this")

    def require_platform_admin(self) -> None:
        if not self.platform_admin:
            raise PermissionDeniedError("only a platform operator may do this")

    def visible_tenant_ids(self) -> list[str] | None:
        """Tenants the caller may list; None means all of them."""
        if self.platform_admin:
            return None
        if self.kind is PrincipalKind.API_TOKEN:
            return [self.token_tenant_id] if self.token_tenant_id else []
        return list(self.roles)
