from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.errors import NotFoundError, PermissionDeniedError
from control_plane.hot_cache import no_change_hook
from control_plane.ids import new_id
from control_plane.principal import Principal, PrincipalKind
from control_plane.tenants.models import Tenant, TenantStatus
from control_plane.tenants.repository import TenantRepository


class Owners(Protocol):
    """Who records a tenant's owner (auth, which owns memberships)."""

    def stage_owner(self, user_id: str, tenant_id: str) -> None:
        """Adds the membership to the session the tenant is created in, uncommitted."""
        ...


class TenantService:
    def __init__(self, session: AsyncSession, changed: Callable[[], None] = no_change_hook) -> None:
        self._session = session
        self._tenants = TenantRepository(session)
        #: Called after writes: a tenant's status and existence are part of the streams'
        #: decisions and of callers' rights.
        self._changed = changed

    async def create(self, principal: Principal, name: str, owners: Owners) -> Tenant:
        """A platform operator creates tenants for others; a signed-in user who creates a
        tenant becomes its owner, in the same transaction. API tokens of a tenant cannot
        create tenants."""
        if not principal.platform_admin and principal.kind is not PrincipalKind.USER:
            raise PermissionDeniedError("tenant tokens cannot create tenants")
        tenant = Tenant(id=new_id(), name=name, status=TenantStatus.ACTIVE)
        await self._tenants.add(tenant)
        if principal.kind is PrincipalKind.USER:
            owners.stage_owner(principal.subject_id, tenant.id)
        await self._session.commit()
        self._changed()
        return tenant

    async def get(self, tenant_id: str) -> Tenant:
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:
            raise NotFoundError("tenant not found")
        return tenant

    async def is_active(self, tenant_id: str) -> bool:
        """False for a suspended tenant and for one that does not exist."""
        return await self._tenants.status_of(tenant_id) == TenantStatus.ACTIVE

    async def list(
        self, principal: Principal, *, after: str | None, limit: int
    ) -> Sequence[Tenant]:
        return await self._tenants.list(
            only=principal.visible_tenant_ids(), after=after, limit=limit
        )

    async def update(
        self,
        principal: Principal,
        tenant_id: str,
        *,
        name: str | None,
        status: TenantStatus | None,
    ) -> Tenant:
        tenant = await self.get(tenant_id)
        if status is not None and status != tenant.status:
            principal.require_platform_admin()
            tenant.status = status
        if name is not None:
            tenant.name = name
        await self._session.commit()
        self._changed()
        return tenant

    async def delete(self, tenant_id: str) -> None:
        tenant = await self.get(tenant_id)
        await self._session.delete(tenant)
        await self._session.commit()
        self._changed()
