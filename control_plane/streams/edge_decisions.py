"""Publish and play decisions for edges, answered from the streams' hot-path cache.

The facts of other domains arrive through narrow interfaces the caller hands in (the
tenants' and the edge registry's services, wired by `edge_control/servicer.py`), so the
streams read no other domain's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db.base import utcnow
from control_plane.ids import hash_secret
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.decisions import (
    PlayDenial,
    PublishDenial,
    PublishFacts,
    decide_play,
    decide_publish,
)
from control_plane.streams.hot_path import PlayRow, PublishRow, StreamsHotPath
from control_plane.streams.playback_tokens import playback_token_grants
from control_plane.streams.repository import StreamRepository


class TenantStatuses(Protocol):
    async def is_active(self, tenant_id: str) -> bool: ...


class HolderPresence(Protocol):
    """What the node holding a stream last told of itself."""

    @property
    def last_heartbeat_at(self) -> datetime | None: ...

    @property
    def revoked(self) -> bool: ...


class NodePresences(Protocol):
    async def presence(self, node_id: str) -> HolderPresence | None:
        """None when the node no longer exists."""
        ...


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


class EdgeDecisionService:
    def __init__(
        self,
        session: AsyncSession,
        settings: ControlPlaneSettings,
        hot_path: StreamsHotPath,
        *,
        tenants: TenantStatuses,
        nodes: NodePresences,
    ) -> None:
        self._session = session
        self._settings = settings
        self._hot = hot_path
        self._streams = StreamRepository(session)
        self._tenants = tenants
        self._nodes = nodes

    async def authorize_publish(
        self, stream_key: str, *, node_id: str, node_draining: bool
    ) -> PublishVerdict:
        now = utcnow()
        key_hash = hash_secret(stream_key)
        hit, row = self._hot.publish.get(key_hash)
        if not hit or (row is not None and row.stream.live_node_id not in (None, node_id)):
            # Whether another node still holds the stream depends on its latest heartbeat,
            # which the cache does not follow, so that case is read fresh (it is rare: a
            # broadcaster moving, or two pushing one key).
            row = await self._publish_row(key_hash)
            self._hot.publish.put(key_hash, row)
        if row is None:
            return PublishVerdict(
                denial=self._decide(PublishFacts(stream_found=False), node_id, node_draining, now)
            )
        stream = row.stream
        holder = (
            await self._nodes.presence(stream.live_node_id)
            if stream.live_node_id not in (None, node_id)
            else None
        )
        facts = PublishFacts(
            stream_found=True,
            enabled=stream.enabled,
            tenant_active=row.tenant_active,
            live_node_id=stream.live_node_id,
            live_since=stream.live_since,
            live_node_heartbeat_at=holder.last_heartbeat_at if holder else None,
            live_node_revoked=holder.revoked if holder else False,
        )
        denial = self._decide(facts, node_id, node_draining, now)
        if denial is None and _needs_live_mark(stream.live_node_id, stream.live_since, node_id):
            await self._streams.mark_live(stream.stream_id, node_id, now)
            await self._session.commit()
            self._hot.publish.put(
                key_hash,
                replace(row, stream=replace(stream, live_node_id=node_id, live_since=now)),
            )
        return PublishVerdict(
            denial=denial,
            stream_id=stream.stream_id,
            tenant_id=stream.tenant_id,
            playback_id=stream.playback_id,
            recording=stream.recording,
            transcode_profile=stream.transcode_profile,
            private_playback=stream.private_playback,
        )

    def _decide(
        self, facts: PublishFacts, node_id: str, node_draining: bool, now: datetime
    ) -> PublishDenial | None:
        return decide_publish(
            facts,
            node_id=node_id,
            node_draining=node_draining,
            now=now,
            stale_after_s=self._settings.node_stale_after_s,
        )

    async def _publish_row(self, key_hash: str) -> PublishRow | None:
        stream = await self._streams.publish_stream(key_hash)
        if stream is None:
            return None
        return PublishRow(
            stream=stream, tenant_active=await self._tenants.is_active(stream.tenant_id)
        )

    async def authorize_play(self, playback_id: str, token: str | None) -> PlayVerdict:
        hit, row = self._hot.play.get(playback_id)
        if not hit:
            row = await self._play_row(playback_id)
            self._hot.play.put(playback_id, row)
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
            private_playback=row.stream.private_playback if row else False,
            token_valid=token_valid,
        )
        if row is None:
            return PlayVerdict(denial=denial)
        return PlayVerdict(
            denial=denial, stream_id=row.stream.stream_id, tenant_id=row.stream.tenant_id
        )

    async def _play_row(self, playback_id: str) -> PlayRow | None:
        stream = await self._streams.play_stream(playback_id)
        if stream is None:
            return None
        return PlayRow(stream=stream, tenant_active=await self._tenants.is_active(stream.tenant_id))

    async def sync_node_streams(self, node_id: str, carried: Sequence[str]) -> None:
        now = utcnow()
        grace = now - timedelta(seconds=2 * self._settings.heartbeat_interval_s)
        await self._streams.sync_live_streams(node_id, carried, grace, now)


def _needs_live_mark(live_node_id: str | None, live_since: datetime | None, node_id: str) -> bool:
    # Re-authorizations by the node that already holds the stream skip the write, which
    # keeps the hot path read-only; heartbeats keep the holder up to date.
    return live_node_id != node_id or live_since is None
