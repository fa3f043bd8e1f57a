"""FastAPI dependencies: settings, the per-request session, the caller, pagination.

Every dependency is `async def`, even the trivial ones: FastAPI runs plain `def`
dependencies on a worker thread, and a thread hop per dependency per request cost more
than everything else a list request does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.auth.principal import Principal
from control_plane.auth.service import AuthService
from control_plane.errors import AuthenticationError
from control_plane.hot_cache import HotPathCache
from control_plane.settings import ControlPlaneSettings


async def get_settings(request: Request) -> ControlPlaneSettings:
    settings: ControlPlaneSettings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        yield session


async def get_hot_cache(request: Request) -> HotPathCache:
    cache: HotPathCache = request.app.state.hot_cache
    return cache


SettingsDep = Annotated[ControlPlaneSettings, Depends(get_settings)]
HotCacheDep = Annotated[HotPathCache, Depends(get_hot_cache)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token")
    return token.strip()


async def get_principal(
    request: Request, session: SessionDep, settings: SettingsDep, cache: HotCacheDep
) -> Principal:
    principal = await AuthService(session, settings, cache).authenticate(bearer_token(request))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the previous page")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]
