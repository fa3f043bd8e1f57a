from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, status

from control_plane.auth.service import AuthService
from control_plane.http.deps import PageDep, PrincipalDep, SessionDep, SettingsDep, app_state
from control_plane.http.pagination import make_page
from control_plane.http.schemas import Page
from control_plane.principal import Scope
from control_plane.tenants.models import Tenant
from control_plane.tenants.schemas import TenantCreate, TenantPublic, TenantUpdate
from control_plane.tenants.service import TenantService

router = APIRouter(tags=["tenants"])

#: What tenant writes call (the composition root wires it to clear the hot-path caches).
TenantsChangedDep = Annotated[Callable[[], None], Depends(app_state("tenants_changed", object))]


def tenant_public(tenant: Tenant) -> TenantPublic:
    return TenantPublic(
        id=tenant.id, name=tenant.name, status=tenant.status, created_at=tenant.created_at
    )


@router.post(
    "/v1/tenants",
    response_model=TenantPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_tenant",
)
async def create_tenant(
    body: TenantCreate,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    changed: TenantsChangedDep,
) -> TenantPublic:
    owners = AuthService(session, settings)
    return tenant_public(await TenantService(session, changed).create(principal, body.name, owners))


@router.get("/v1/tenants", response_model=Page[TenantPublic], operation_id="list_tenants")
async def list_tenants(
    principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[TenantPublic]:
    rows = await TenantService(session).list(principal, after=page.cursor, limit=page.limit + 1)
    return make_page(rows, page.limit, tenant_public)


@router.get("/v1/tenants/{tenant_id}", response_model=TenantPublic, operation_id="get_tenant")
async def get_tenant(tenant_id: str, principal: PrincipalDep, session: SessionDep) -> TenantPublic:
    principal.require(tenant_id, Scope.READ)
    return tenant_public(await TenantService(session).get(tenant_id))


@router.patch("/v1/tenants/{tenant_id}", response_model=TenantPublic, operation_id="update_tenant")
async def update_tenant(
    tenant_id: str,
    body: TenantUpdate,
    principal: PrincipalDep,
    session: SessionDep,
    changed: TenantsChangedDep,
) -> TenantPublic:
    principal.require(tenant_id, Scope.ADMIN)
    tenant = await TenantService(session, changed).update(
        principal, tenant_id, name=body.name, status=body.status
    )
    return tenant_public(tenant)


@router.delete("/v1/tenants/{tenant_id}", status_code=204, operation_id="delete_tenant")
async def delete_tenant(
    tenant_id: str, principal: PrincipalDep, session: SessionDep, changed: TenantsChangedDep
) -> None:
    principal.require_owner(tenant_id)
    await TenantService(session, changed).delete(tenant_id)
