from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.tenants.models import Tenant


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, tenant: Tenant) -> None:
        self._session.add(tenant)
        await self._session.flush()

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self._session.get(Tenant, tenant_id)

    async def list(
        self, *, only: Sequence[str] | None, after: str | None, limit: int
    ) -> Sequence[Tenant]:
        query = select(Tenant)
        if only is not None:
            query = query.where(Tenant.id.in_(only))
        if after:
            query = query.where(Tenant.id > after)
        result = await self._session.execute(query.order_by(Tenant.id).limit(limit))
        return result.scalars().all()

    async def status_of(self, tenant_id: str) -> str | None:
        result = await self._session.execute(select(Tenant.status).where(Tenant.id == tenant_id))
        return result.scalar_one_or_none()
