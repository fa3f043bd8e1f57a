from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth.models import Membership
from control_plane.auth.principal import Principal, PrincipalKind, Role
from control_plane.errors import NotFoundError, PermissionDeniedError
from control_plane.hot_cache import HotPathCache
from control_plane.ids import new_id
from control_plane.tenants.models import Tenant, TenantStatus
from control_plane.tenants.repository import TenantRepository


class TenantService:
    def __init__(self, session: AsyncSession, cache: HotPathCache | None = None) -> None:
        self._session = session
        self._tenants = TenantRepository(session)
        self._cache = cache or HotPathCache(ttl_s=0)

    async def create(self, principal: Principal, name: str) -> Tenant:
        """A platform operator creates tenants for others; a signed-in user who creates a
        tenant becomes its owner. API tokens of a tenant cannot create tenants."""
        if not principal.platform_admin and principal.kind is not PrincipalKind.USER:
            raise PermissionDeniedError("tenant tokens cannot create tenants")
        tenant = Tenant(id=new_id(), name=name, status=TenantStatus.ACTIVE)
        await self._tenants.add(tenant)
        if principal.kind is PrincipalKind.USER:
            self._session.add(
                Membership(user_id=principal.subject_id, tenant_id=tenant.id, role=Role.OWNER)
            )
        await self._session.commit()
        self._cache.clear()
        return tenant

    async def get(self, tenant_id: str) -> Tenant:
        tenant = await self._tenants.get(tenant_id)
        if tenant is None:
            raise NotFoundError("tenant not found")
        return tenant

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
        self._cache.clear()
        return tenant

    async def delete(self, tenant_id: str) -> None:
        tenant = await self.get(tenant_id)
        await self._session.delete(tenant)
        await self._session.commit()
        self._cache.clear()
