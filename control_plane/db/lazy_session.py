"""A session that is only opened when first used.

Edge decisions are mostly answered from the hot-path cache and never touch the database;
creating and closing an AsyncSession for each of them cost more than the decision.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class LazySession:
    __slots__ = ("_factory", "_session")

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._factory()
        return getattr(self._session, name)

    def as_session(self) -> AsyncSession:
        """This object, typed as the session it stands for."""
        return cast(AsyncSession, self)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
