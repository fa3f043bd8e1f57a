"""Use cases for identities: login, refresh, bearer authentication, API tokens, members."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth.hot_path import AuthHotPath
from control_plane.auth.models import ApiToken, Membership, RefreshToken, User
from control_plane.auth.passwords import hash_password, verify_password
from control_plane.auth.repository import (
    ApiTokenRepository,
    RefreshTokenRepository,
    UserRepository,
)
from control_plane.auth.tokens import (
    decode_access_token,
    encode_access_token,
    format_api_token,
    is_api_token,
    parse_api_token,
)
from control_plane.db.base import utcnow
from control_plane.errors import AuthenticationError, ConflictError, NotFoundError
from control_plane.ids import hash_secret, new_id, new_secret, secrets_match
from control_plane.principal import Principal, PrincipalKind, Role, Scope
from control_plane.settings import ControlPlaneSettings


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class IssuedApiToken:
    token: ApiToken
    secret: str


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        settings: ControlPlaneSettings,
        hot_path: AuthHotPath | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._hot = hot_path or AuthHotPath.uncached()
        self._users = UserRepository(session)
        self._refresh = RefreshTokenRepository(session)
        self._api_tokens = ApiTokenRepository(session)

    @property
    def _secret(self) -> str:
        return self._settings.signing_secret.get_secret_value()

    # -- people -----------------------------------------------------------------------

    async def create_user(self, email: str, password: str, *, platform_admin: bool = False) -> User:
        email = email.strip().lower()
        if await self._users.get_by_email(email) is not None:
            raise ConflictError("a user with this email exists")
        password_hash = await asyncio.to_thread(hash_password, password)
        user = User(
            id=new_id(), email=email, password_hash=password_hash, is_platform_admin=platform_admin
        )
        try:
            await self._users.add(user)
            await self._session.commit()
        except IntegrityError as exc:  # created concurrently with the same email
            await self._session.rollback()
            raise ConflictError("a user with this email exists") from exc
        return user

    async def add_member(
        self, tenant_id: str, email: str, password: str | None, role: Role
    ) -> tuple[User, Membership]:
        email = email.strip().lower()
        user = await self._users.get_by_email(email)
        try:
            if user is None:
                if not password:
                    raise NotFoundError("no user has this email; give a password to create one")
                password_hash = await asyncio.to_thread(hash_password, password)
                user = User(id=new_id(), email=email, password_hash=password_hash)
                await self._users.add(user)
            if await self._users.get_membership(tenant_id, user.id) is not None:
                raise ConflictError("this user is already a member of the tenant")
            membership = Membership(user_id=user.id, tenant_id=tenant_id, role=role.value)
            await self._users.add_membership(membership)
            await self._session.commit()
        except IntegrityError as exc:  # the same user or membership was added concurrently
            await self._session.rollback()
            raise ConflictError("this user is already a member of the tenant") from exc
        self._hot.changed()
        return user, membership

    def stage_owner(self, user_id: str, tenant_id: str) -> None:
        """Makes the user the owner of a tenant being created in this session; the
        tenant's creation commits both."""
        self._session.add(Membership(user_id=user_id, tenant_id=tenant_id, role=Role.OWNER))

    async def list_members(self, tenant_id: str) -> Sequence[tuple[User, Membership]]:
        return await self._users.list_members(tenant_id)

    async def remove_member(self, tenant_id: str, user_id: str) -> None:
        membership = await self._users.get_membership(tenant_id, user_id)
        if membership is None:
            raise NotFoundError("member not found")
        await self._users.delete_membership(membership)
        await self._session.commit()
        self._hot.changed()

    async def ensure_platform_admin(self, email: str, password: str) -> bool:
        """Creates the first platform admin; False when one exists already."""
        if await self._users.any_platform_admin():
            return False
        await self.create_user(email, password, platform_admin=True)
        return True

    # -- sessions ---------------------------------------------------------------------

    async def login(self, email: str, password: str) -> TokenPair:
        user = await self._users.get_by_email(email.strip().lower())
        stored = user.password_hash if user is not None else None
        if not await asyncio.to_thread(verify_password, password, stored) or user is None:
            raise AuthenticationError("wrong email or password")
        pair = await self._issue_pair(user.id)
        await self._session.commit()
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = utcnow()
        stored = await self._refresh.get_by_hash(hash_secret(refresh_token))
        if stored is None or stored.expires_at <= now:
            raise AuthenticationError("invalid or expired refresh token")
        if stored.revoked_at is not None or not await self._refresh.consume(stored.id, now):
            # A refresh token used twice was probably stolen: end every session of the user.
            await self._refresh.revoke_all_for_user(stored.user_id, now)
            await self._session.commit()
            raise AuthenticationError("refresh token already used")
        pair = await self._issue_pair(stored.user_id)
        await self._session.commit()
        return pair

    async def _issue_pair(self, user_id: str) -> TokenPair:
        ttl = self._settings.access_token_ttl_s
        access = encode_access_token(user_id, self._secret, ttl)
        refresh = new_secret("rt", 32)
        await self._refresh.add(
            RefreshToken(
                id=new_id(),
                user_id=user_id,
                token_hash=hash_secret(refresh),
                expires_at=utcnow() + timedelta(seconds=self._settings.refresh_token_ttl_s),
            )
        )
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)

    # -- bearer credentials -----------------------------------------------------------

    async def authenticate(self, bearer: str) -> Principal:
        if is_api_token(bearer):
            return await self._authenticate_api_token(bearer)
        user_id = decode_access_token(bearer, self._secret)
        hit, cached = self._hot.principals.get(f"user:{user_id}")
        if hit and cached is not None:
            return cached
        principal = await self._load_user_principal(user_id)
        self._hot.principals.put(f"user:{user_id}", principal)
        return principal

    async def _load_user_principal(self, user_id: str) -> Principal:
        user = await self._users.get(user_id)
        if user is None:
            raise AuthenticationError("user no longer exists")
        roles = {t: Role(r) for t, r in (await self._users.roles_of(user.id)).items()}
        return Principal(
            kind=PrincipalKind.USER,
            subject_id=user.id,
            platform_admin=user.is_platform_admin,
            roles=roles,
        )

    async def _authenticate_api_token(self, bearer: str) -> Principal:
        cache_key = f"token:{hash_secret(bearer)}"
        hit, cached = self._hot.principals.get(cache_key)
        if hit and cached is not None:
            return cached
        parts = parse_api_token(bearer)
        if parts is None:
            raise AuthenticationError("malformed API token")
        token = await self._api_tokens.get(parts.token_id)
        if token is None or not secrets_match(parts.secret, token.secret_hash):
            raise AuthenticationError("invalid API token")
        if token.revoked_at is not None:
            raise AuthenticationError("API token revoked")
        now = utcnow()
        interval = self._settings.token_touch_interval_s
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= interval:
            await self._api_tokens.touch(token.id, now)
            await self._session.commit()
        scopes = frozenset(Scope(s) for s in token.scopes.split())
        principal = Principal(
            kind=PrincipalKind.API_TOKEN,
            subject_id=token.id,
            platform_admin=token.tenant_id is None,
            token_tenant_id=token.tenant_id,
            token_scopes=scopes,
        )
        # Cached for at most min(cache TTL, touch interval), so last_used_at is still
        # written about once per touch interval while the token is in use.
        if self._settings.token_touch_interval_s >= self._settings.hot_cache_ttl_s:
            self._hot.principals.put(cache_key, principal)
        return principal

    # -- API tokens -------------------------------------------------------------------

    async def create_api_token(
        self, tenant_id: str | None, name: str, scopes: Sequence[Scope]
    ) -> IssuedApiToken:
        token_id = new_id()
        secret = new_secret("s", 32)[2:]
        token = ApiToken(
            id=token_id,
            tenant_id=tenant_id,
            name=name,
            scopes=" ".join(sorted({s.value for s in scopes})),
            secret_hash=hash_secret(secret),
        )
        await self._api_tokens.add(token)
        await self._session.commit()
        return IssuedApiToken(token=token, secret=format_api_token(token_id, secret))

    async def list_api_tokens(
        self, tenant_id: str, *, after: str | None, limit: int
    ) -> Sequence[ApiToken]:
        return await self._api_tokens.list_for_tenant(tenant_id, after=after, limit=limit)

    async def get_api_token(self, tenant_id: str, token_id: str) -> ApiToken:
        token = await self._api_tokens.get_for_tenant(tenant_id, token_id)
        if token is None:
            raise NotFoundError("token not found")
        return token

    async def revoke_api_token(self, tenant_id: str, token_id: str) -> ApiToken:
        token = await self.get_api_token(tenant_id, token_id)
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            await self._session.commit()
        self._hot.changed()
        return token
