"""FastAPI dependencies: settings, the per-request session, the caller, pagination.

Every dependency is `async def`, even the trivial ones: FastAPI runs plain `def`
dependencies on a worker thread, and a thread hop per dependency per request cost more
than everything else a list request does.

The caller is resolved without the request's session: API tokens and users are
answered from the hot-path cache, and only a miss opens a session (of its own), so
reads that need no session - the stream list - never create one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.auth.principal import Principal
from control_plane.auth.service import AuthService
from control_plane.db.lazy_session import LazySession
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


async def authenticate(request: Request) -> Principal:
    """The caller of `request`; for endpoints that take no dependencies (see
    `streams.api.list_streams`)."""
    state = request.app.state
    session = LazySession(state.session_factory)
    try:
        auth = AuthService(session.as_session(), state.settings, state.hot_cache)
        return await auth.authenticate(bearer_token(request))
    finally:
        await session.close()


async def get_principal(request: Request) -> Principal:
    return await authenticate(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


PageLimit = Annotated[int, Query(ge=1, le=200, description="Items per page")]
PageCursor = Annotated[
    str | None, Query(max_length=64, description="next_cursor of the previous page")
]


async def page_params(limit: PageLimit = 50, cursor: PageCursor = None) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]
