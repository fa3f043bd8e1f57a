"""Use cases for streams: management by tenants, and publish/play decisions for edges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.auth.tokens import encode_playback_token, playback_token_grants
from control_plane.db.base import utcnow
from control_plane.errors import InvalidRequestError, NotFoundError
from control_plane.hot_cache import HotPathCache
from control_plane.ids import hash_secret, new_id, new_public_id, new_secret
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.decisions import (
    PlayDenial,
    PublishDenial,
    PublishFacts,
    decide_play,
    decide_publish,
)
from control_plane.streams.models import Stream
from control_plane.streams.repository import StreamRepository
from control_plane.streams.urls import ingest_url, playback_url, whep_url, whip_url

STREAM_KEY_PREFIX = "sk"


@dataclass(frozen=True, slots=True)
class StreamWithKey:
    stream: Stream
    stream_key: str


@dataclass(frozen=True, slots=True)
class StreamChanges:
    name: str | None = None
    recording: bool | None = None
    transcode_profile: str | None = None
    private_playback: bool | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class PublishVerdict:
    denial: PublishDenial | None
    stream_id: str = ""
    tenant_id: str = ""
    playback_id: str = ""
    recording: bool = False
    transcode_profile: str = ""
    private_playback: bool = False


@dataclass(frozen=True, slots=True)
class PlayVerdict:
    denial: PlayDenial | None
    stream_id: str = ""
    tenant_id: str = ""


class StreamService:
    def __init__(
        self,
        session: AsyncSession,
        settings: ControlPlaneSettings,
        cache: HotPathCache | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._streams = StreamRepository(session)
        self._cache = cache or HotPathCache(ttl_s=0)

    async def _commit_change(self) -> None:
        await self._session.commit()
        self._cache.clear()

    async def create(
        self,
        tenant_id: str,
        name: str,
        *,
        recording: bool = False,
        transcode_profile: str = "",
        private_playback: bool = False,
        enabled: bool = True,
    ) -> StreamWithKey:
        key = new_secret(STREAM_KEY_PREFIX)
        now = utcnow()
        stream = Stream(
            id=new_id(),
            tenant_id=tenant_id,
            name=name,
            key_hash=hash_secret(key),
            playback_id=new_public_id(),
            recording=recording,
            transcode_profile=transcode_profile,
            private_playback=private_playback,
            enabled=enabled,
            created_at=now,
            updated_at=now,
        )
        await self._streams.add(stream)
        await self._commit_change()
        return StreamWithKey(stream=stream, stream_key=key)

    async def get(self, tenant_id: str, stream_id: str) -> Stream:
        stream = await self._streams.get_for_tenant(tenant_id, stream_id)
        if stream is None:
            raise NotFoundError("stream not found")
        return stream

    async def list(self, tenant_id: str, *, after: str | None, limit: int) -> Sequence[Stream]:
        return await self._streams.list_for_tenant(tenant_id, after=after, limit=limit)

    async def update(self, tenant_id: str, stream_id: str, changes: StreamChanges) -> Stream:
        stream = await self.get(tenant_id, stream_id)
        for field in ("name", "recording", "transcode_profile", "private_playback", "enabled"):
            value = getattr(changes, field)
            if value is not None:
                setattr(stream, field, value)
        stream.updated_at = utcnow()
        await self._commit_change()
        return stream

    async def delete(self, tenant_id: str, stream_id: str) -> None:
        stream = await self.get(tenant_id, stream_id)
        await self._streams.delete(stream)
        await self._commit_change()

    async def rotate_key(self, tenant_id: str, stream_id: str) -> StreamWithKey:
        """The old key stops working at once: only the new key's hash is kept."""
        stream = await self.get(tenant_id, stream_id)
        key = new_secret(STREAM_KEY_PREFIX)
        stream.key_hash = hash_secret(key)
        stream.updated_at = utcnow()
        await self._commit_change()
        return StreamWithKey(stream=stream, stream_key=key)

    async def issue_playback_token(
        self, tenant_id: str, stream_id: str, ttl_s: int
    ) -> tuple[str, int]:
        if ttl_s > self._settings.playback_token_max_ttl_s:
            raise InvalidRequestError(
                f"ttl_seconds may be at most {self._settings.playback_token_max_ttl_s}"
            )
        stream = await self.get(tenant_id, stream_id)
        return encode_playback_token(
            stream.playback_id, self._settings.signing_secret.get_secret_value(), ttl_s
        )

    def ingest_url(self, stream_key: str) -> str:
        return ingest_url(self._settings.public_rtmp_url, stream_key)

    def playback_url(self, playback_id: str) -> str:
        return playback_url(self._settings.public_playback_url, playback_id)

    def whip_url(self) -> str:
        return whip_url(self._settings.public_webrtc_url)

    def whep_url(self, playback_id: str) -> str:
        return whep_url(self._settings.public_webrtc_url, playback_id)

    # -- decisions for edges ----------------------------------------------------------

    async def authorize_publish(
        self, stream_key: str, *, node_id: str, node_draining: bool
    ) -> PublishVerdict:
        now = utcnow()
        key_hash = hash_secret(stream_key)
        hit, row = self._cache.publish.get(key_hash)
        if not hit or (row is not None and row.live_node_id not in (None, node_id)):
            # Whether another node still holds the stream depends on its latest heartbeat,
            # which the cache does not follow, so that case is read fresh (it is rare: a
            # broadcaster moving, or two pushing one key).
            row = await self._streams.publish_row(key_hash)
            self._cache.publish.put(key_hash, row)
        facts = (
            PublishFacts(stream_found=False)
            if row is None
            else PublishFacts(
                stream_found=True,
                enabled=row.enabled,
                tenant_active=row.tenant_active,
                live_node_id=row.live_node_id,
                live_since=row.live_since,
                live_node_heartbeat_at=row.live_node_heartbeat_at,
                live_node_revoked=row.live_node_revoked,
            )
        )
        denial = decide_publish(
            facts,
            node_id=node_id,
            node_draining=node_draining,
            now=now,
            stale_after_s=self._settings.node_stale_after_s,
        )
        if row is None:
            return PublishVerdict(denial=denial)
        if denial is None and _needs_live_mark(row.live_node_id, row.live_since, node_id):
            await self._streams.mark_live(row.stream_id, node_id, now)
            await self._session.commit()
            self._cache.publish.put(
                key_hash,
                replace(
                    row,
                    live_node_id=node_id,
                    live_since=now,
                    live_node_heartbeat_at=now,
                    live_node_revoked=False,
                ),
            )
        return PublishVerdict(
            denial=denial,
            stream_id=row.stream_id,
            tenant_id=row.tenant_id,
            playback_id=row.playback_id,
            recording=row.recording,
            transcode_profile=row.transcode_profile,
            private_playback=row.private_playback,
        )

    async def authorize_play(self, playback_id: str, token: str | None) -> PlayVerdict:
        hit, row = self._cache.play.get(playback_id)
        if not hit:
            row = await self._streams.play_row(playback_id)
            self._cache.play.put(playback_id, row)
        token_valid = bool(
            row is not None
            and token
            and playback_token_grants(
                token, playback_id, self._settings.signing_secret.get_secret_value()
            )
        )
        denial = decide_play(
            stream_found=row is not None,
            tenant_active=row.tenant_active if row else False,
            private_playback=row.private_playback if row else False,
            token_valid=token_valid,
        )
        if row is None:
            return PlayVerdict(denial=denial)
        return PlayVerdict(denial=denial, stream_id=row.stream_id, tenant_id=row.tenant_id)

    async def sync_node_streams(self, node_id: str, carried: Sequence[str]) -> None:
        now = utcnow()
        grace = now - timedelta(seconds=2 * self._settings.heartbeat_interval_s)
        await self._streams.sync_live_streams(node_id, carried, grace, now)


def _needs_live_mark(live_node_id: str | None, live_since: datetime | None, node_id: str) -> bool:
    # Re-authorizations by the node that already holds the stream skip the write, which
    # keeps the hot path read-only; heartbeats keep the holder up to date.
    return live_node_id != node_id or live_since is None
