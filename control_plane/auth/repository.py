from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth.models import ApiToken, Membership, RefreshToken, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: str) -> User | None:
        return await self._session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self._session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> None:
        self._session.add(user)
        await self._session.flush()

    async def any_platform_admin(self) -> bool:
        result = await self._session.execute(
            select(User.id).where(User.is_platform_admin.is_(True)).limit(1)
        )
        return result.first() is not None

    async def roles_of(self, user_id: str) -> dict[str, str]:
        result = await self._session.execute(
            select(Membership.tenant_id, Membership.role).where(Membership.user_id == user_id)
        )
        return {tenant_id: role for tenant_id, role in result.all()}

    async def get_membership(self, tenant_id: str, user_id: str) -> Membership | None:
        return await self._session.get(Membership, (user_id, tenant_id))

    async def add_membership(self, membership: Membership) -> None:
        self._session.add(membership)
        await self._session.flush()

    async def delete_membership(self, membership: Membership) -> None:
        await self._session.delete(membership)
        await self._session.flush()

    async def list_members(self, tenant_id: str) -> Sequence[tuple[User, Membership]]:
        result = await self._session.execute(
            select(User, Membership)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.tenant_id == tenant_id)
            .order_by(User.email)
        )
        return [(row[0], row[1]) for row in result.all()]


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: RefreshToken) -> None:
        self._session.add(token)
        await self._session.flush()

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        result = await self._session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def consume(self, token_id: str, now: datetime) -> bool:
        """Marks the token used; False when it already was. The condition sits in the
        UPDATE itself so two concurrent uses cannot both win."""
        result = await self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return cast("CursorResult[Any]", result).rowcount == 1

    async def revoke_all_for_user(self, user_id: str, now: datetime) -> None:
        await self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class ApiTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: ApiToken) -> None:
        self._session.add(token)
        await self._session.flush()

    async def get(self, token_id: str) -> ApiToken | None:
        return await self._session.get(ApiToken, token_id)

    async def get_for_tenant(self, tenant_id: str, token_id: str) -> ApiToken | None:
        result = await self._session.execute(
            select(ApiToken).where(ApiToken.id == token_id, ApiToken.tenant_id == tenant_id)
        )
        return result.scalar_one_or_none()

    async def list_for_tenant(
        self, tenant_id: str, *, after: str | None, limit: int
    ) -> Sequence[ApiToken]:
        query = select(ApiToken).where(ApiToken.tenant_id == tenant_id)
        if after:
            query = query.where(ApiToken.id > after)
        result = await self._session.execute(query.order_by(ApiToken.id).limit(limit))
        return result.scalars().all()

    async def touch(self, token_id: str, now: datetime) -> None:
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        )
