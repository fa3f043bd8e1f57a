"""FastAPI dependencies: settings, the per-request session, the caller, pagination.

Every dependency is `async def`, even the trivial ones: FastAPI runs plain `def`
dependencies on a worker thread, and a thread hop per dependency per request cost more
than everything else a list request does.

The caller is resolved by the `Authenticator` the composition root puts in the app's
state (auth's `BearerAuthenticator`), without the request's session: API tokens and users
are answered from auth's hot-path cache, and only a miss opens a session (of its own), so
reads that need no session - the stream list - never create one. Each domain's routes
get their domain's hot path the same way (`app_state`), so this module knows no domain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.errors import AuthenticationError
from control_plane.principal import Principal
from control_plane.settings import ControlPlaneSettings

T = TypeVar("T")


class Authenticator(Protocol):
    async def __call__(self, bearer: str) -> Principal:
        """The caller `bearer` authenticates, or AuthenticationError."""
        ...


async def get_settings(request: Request) -> ControlPlaneSettings:
    settings: ControlPlaneSettings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with factory() as session:
        yield session


def app_state(name: str, kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency returning the app state's `name`, which the composition root set."""

    async def get(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    get.__name__ = f"get_{name}"
    return get


SettingsDep = Annotated[ControlPlaneSettings, Depends(get_settings)]
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
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator(bearer_token(request))


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
