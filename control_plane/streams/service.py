"""Use cases for streams as tenants manage them (edges' decisions: `edge_decisions.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db.base import utcnow
from control_plane.errors import InvalidRequestError, NotFoundError
from control_plane.ids import hash_secret, new_id, new_public_id, new_secret
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.hot_path import StreamsHotPath
from control_plane.streams.models import Stream
from control_plane.streams.playback_tokens import encode_playback_token
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


class StreamService:
    def __init__(
        self,
        session: AsyncSession,
        settings: ControlPlaneSettings,
        hot_path: StreamsHotPath | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._streams = StreamRepository(session)
        self._hot = hot_path or StreamsHotPath.uncached()

    async def _commit_change(self) -> None:
        await self._session.commit()
        self._hot.changed()

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

    async def owners(self, stream_ids: Sequence[str]) -> Sequence[tuple[str, str, str]]:
        """(stream id, tenant id, playback id) of the streams that exist among `stream_ids`."""
        return await self._streams.owners(stream_ids) if stream_ids else []

    def ingest_url(self, stream_key: str) -> str:
        return ingest_url(self._settings.public_rtmp_url, stream_key)

    def playback_url(self, playback_id: str) -> str:
        return playback_url(self._settings.public_playback_url, playback_id)

    def whip_url(self) -> str:
        return whip_url(self._settings.public_webrtc_url)

    def whep_url(self, playback_id: str) -> str:
        return whep_url(self._settings.public_webrtc_url, playback_id)
