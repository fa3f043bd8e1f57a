from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.streams.models import Stream


@dataclass(frozen=True, slots=True)
class PublishStream:
    """The stream's own part of a publish decision."""

    stream_id: str
    tenant_id: str
    playback_id: str
    enabled: bool
    recording: bool
    transcode_profile: str
    private_playback: bool
    #: The node publishing the stream right now, if any, and since when.
    live_node_id: str | None
    live_since: datetime | None


@dataclass(frozen=True, slots=True)
class PlayStream:
    """The stream's own part of a play decision."""

    stream_id: str
    tenant_id: str
    private_playback: bool


class StreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, stream: Stream) -> None:
        self._session.add(stream)
        await self._session.flush()

    async def get_for_tenant(self, tenant_id: str, stream_id: str) -> Stream | None:
        result = await self._session.execute(
            select(Stream).where(Stream.id == stream_id, Stream.tenant_id == tenant_id)
        )
        return result.scalar_one_or_none()

    async def list_for_tenant(
        self, tenant_id: str, *, after: str | None, limit: int
    ) -> Sequence[Stream]:
        query = select(Stream).where(Stream.tenant_id == tenant_id)
        if after:
            query = query.where(Stream.id > after)
        result = await self._session.execute(query.order_by(Stream.id).limit(limit))
        return result.scalars().all()

    async def owners(self, stream_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(stream id, tenant id, playback id) of the streams that exist among `stream_ids`."""
        result = await self._session.execute(
            select(Stream.id, Stream.tenant_id, Stream.playback_id).where(
                Stream.id.in_(list(stream_ids))
            )
        )
        return [(row[0], row[1], row[2]) for row in result.all()]

    async def delete(self, stream: Stream) -> None:
        await self._session.delete(stream)
        await self._session.flush()

    async def publish_stream(self, key_hash: str) -> PublishStream | None:
        query = select(
            Stream.id,
            Stream.tenant_id,
            Stream.playback_id,
            Stream.enabled,
            Stream.recording,
            Stream.transcode_profile,
            Stream.private_playback,
            Stream.live_node_id,
            Stream.live_since,
        ).where(Stream.key_hash == key_hash)
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return PublishStream(
            stream_id=row[0],
            tenant_id=row[1],
            playback_id=row[2],
            enabled=row[3],
            recording=row[4],
            transcode_profile=row[5],
            private_playback=row[6],
            live_node_id=row[7],
            live_since=row[8],
        )

    async def play_stream(self, playback_id: str) -> PlayStream | None:
        query = select(Stream.id, Stream.tenant_id, Stream.private_playback).where(
            Stream.playback_id == playback_id
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        return PlayStream(stream_id=row[0], tenant_id=row[1], private_playback=row[2])

    async def mark_live(self, stream_id: str, node_id: str, now: datetime) -> None:
        await self._session.execute(
            update(Stream)
            .where(Stream.id == stream_id)
            .values(live_node_id=node_id, live_since=now)
        )

    async def sync_live_streams(
        self, node_id: str, carried: Sequence[str], grace_before: datetime, now: datetime
    ) -> None:
        """Makes the store agree with what a node reports it publishes.

        Streams the node stopped reporting are released, except ones authorized moments
        ago whose publish may not have reached the node's report yet.
        """
        release = update(Stream).where(
            Stream.live_node_id == node_id,
            Stream.live_since < grace_before,
        )
        if carried:
            release = release.where(Stream.id.not_in(carried))
        await self._session.execute(release.values(live_node_id=None, live_since=None))
        if carried:
            await self._session.execute(
                update(Stream)
                .where(Stream.id.in_(carried), Stream.live_node_id.is_(None))
                .values(live_node_id=node_id, live_since=now)
            )
