"""Resolves a request's bearer credential to its caller (the REST app's `Authenticator`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from control_plane.auth.hot_path import AuthHotPath
from control_plane.auth.service import AuthService
from control_plane.db.lazy_session import LazySession
from control_plane.principal import Principal
from control_plane.settings import ControlPlaneSettings


class BearerAuthenticator:
    """Answers from auth's hot-path cache; only a miss opens a session, of its own."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: ControlPlaneSettings,
        hot_path: AuthHotPath,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._hot = hot_path

    async def __call__(self, bearer: str) -> Principal:
        session = LazySession(self._sessions)
        try:
            return await AuthService(session.as_session(), self._settings, self._hot).authenticate(
                bearer
            )
        finally:
            await session.close()
