"""REST routes for sign-in, the caller, tenant API tokens and tenant members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from control_plane.auth.hot_path import AuthHotPath
from control_plane.auth.login_throttle import LoginThrottle
from control_plane.auth.models import ApiToken
from control_plane.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    LoginRequest,
    MemberCreate,
    MemberPublic,
    MePublic,
    MeTenant,
    RefreshRequest,
    TokenPairPublic,
)
from control_plane.auth.service import AuthService
from control_plane.errors import AuthenticationError, TooManyRequestsError
from control_plane.http.deps import PageDep, PrincipalDep, SessionDep, SettingsDep, app_state
from control_plane.http.pagination import make_page
from control_plane.http.schemas import Page
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.principal import PrincipalKind, Scope
from control_plane.tenants.service import TenantService

router = APIRouter()

AuthHotPathDep = Annotated[AuthHotPath, Depends(app_state("auth_hot_path", AuthHotPath))]
LoginThrottleDep = Annotated[LoginThrottle, Depends(app_state("login_throttle", LoginThrottle))]
MetricsDep = Annotated[ControlPlaneMetrics, Depends(app_state("metrics", ControlPlaneMetrics))]


def token_public(token: ApiToken) -> ApiTokenPublic:
    return ApiTokenPublic(
        id=token.id,
        tenant_id=token.tenant_id,
        name=token.name,
        scopes=[Scope(s) for s in token.scopes.split()],
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.post("/v1/auth/login", response_model=TokenPairPublic, tags=["auth"], operation_id="login")
async def login(
    body: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
    throttle: LoginThrottleDep,
    metrics: MetricsDep,
) -> TokenPairPublic:
    account = body.email.strip().lower()
    address = request.client.host if request.client is not None else ""
    try:
        throttle.check(account, address)
    except TooManyRequestsError:
        metrics.login_attempts.labels("throttled").inc()
        raise
    try:
        pair = await AuthService(session, settings, hot_path).login(body.email, body.password)
    except AuthenticationError:
        throttle.failed(account, address)
        metrics.login_attempts.labels("failed").inc()
        raise
    throttle.succeeded(account)
    metrics.login_attempts.labels("succeeded").inc()
    return TokenPairPublic(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/v1/auth/refresh", response_model=TokenPairPublic, tags=["auth"], operation_id="refresh"
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, hot_path: AuthHotPathDep
) -> TokenPairPublic:
    pair = await AuthService(session, settings, hot_path).refresh(body.refresh_token)
    return TokenPairPublic(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.get("/v1/me", response_model=MePublic, tags=["auth"], operation_id="get_me")
async def me(principal: PrincipalDep) -> MePublic:
    tenants = [MeTenant(tenant_id=t, role=r) for t, r in sorted(principal.roles.items())]
    scopes = sorted(principal.token_scopes) if principal.kind is PrincipalKind.API_TOKEN else []
    return MePublic(
        kind=principal.kind.value,
        id=principal.subject_id,
        platform_admin=principal.platform_admin,
        tenants=tenants,
        scopes=scopes,
    )


@router.post(
    "/v1/tenants/{tenant_id}/tokens",
    response_model=ApiTokenCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["tokens"],
    operation_id="create_token",
)
async def create_token(
    tenant_id: str,
    body: ApiTokenCreate,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
) -> ApiTokenCreated:
    principal.require(tenant_id, Scope.ADMIN)
    await TenantService(session).get(tenant_id)
    issued = await AuthService(session, settings, hot_path).create_api_token(
        tenant_id, body.name, body.scopes
    )
    return ApiTokenCreated(**token_public(issued.token).model_dump(), token=issued.secret)


@router.get(
    "/v1/tenants/{tenant_id}/tokens",
    response_model=Page[ApiTokenPublic],
    tags=["tokens"],
    operation_id="list_tokens",
)
async def list_tokens(
    tenant_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
    page: PageDep,
) -> Page[ApiTokenPublic]:
    principal.require(tenant_id, Scope.ADMIN)
    rows = await AuthService(session, settings, hot_path).list_api_tokens(
        tenant_id, after=page.cursor, limit=page.limit + 1
    )
    return make_page(rows, page.limit, token_public)


@router.get(
    "/v1/tenants/{tenant_id}/tokens/{token_id}",
    response_model=ApiTokenPublic,
    tags=["tokens"],
    operation_id="get_token",
)
async def get_token(
    tenant_id: str,
    token_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
) -> ApiTokenPublic:
    principal.require(tenant_id, Scope.ADMIN)
    return token_public(
        await AuthService(session, settings, hot_path).get_api_token(tenant_id, token_id)
    )


@router.delete(
    "/v1/tenants/{tenant_id}/tokens/{token_id}",
    response_model=ApiTokenPublic,
    tags=["tokens"],
    operation_id="revoke_token",
)
async def revoke_token(
    tenant_id: str,
    token_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
) -> ApiTokenPublic:
    principal.require(tenant_id, Scope.ADMIN)
    token = await AuthService(session, settings, hot_path).revoke_api_token(tenant_id, token_id)
    return token_public(token)


@router.post(
    "/v1/tenants/{tenant_id}/members",
    response_model=MemberPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["members"],
    operation_id="add_member",
)
async def add_member(
    tenant_id: str,
    body: MemberCreate,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
) -> MemberPublic:
    if body.role.value == "owner":
        principal.require_owner(tenant_id)
    else:
        principal.require(tenant_id, Scope.ADMIN)
    await TenantService(session).get(tenant_id)
    user, membership = await AuthService(session, settings, hot_path).add_member(
        tenant_id, body.email, body.password, body.role
    )
    return MemberPublic(
        user_id=user.id, email=user.email, role=body.role, created_at=membership.created_at
    )


@router.get(
    "/v1/tenants/{tenant_id}/members",
    response_model=list[MemberPublic],
    tags=["members"],
    operation_id="list_members",
)
async def list_members(
    tenant_id: str, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> list[MemberPublic]:
    principal.require(tenant_id, Scope.READ)
    rows = await AuthService(session, settings).list_members(tenant_id)
    return [
        MemberPublic(user_id=u.id, email=u.email, role=m.role, created_at=m.created_at)
        for u, m in rows
    ]


@router.delete(
    "/v1/tenants/{tenant_id}/members/{user_id}",
    status_code=204,
    tags=["members"],
    operation_id="remove_member",
)
async def remove_member(
    tenant_id: str,
    user_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: AuthHotPathDep,
) -> None:
    principal.require_owner(tenant_id)
    await AuthService(session, settings, hot_path).remove_member(tenant_id, user_id)
