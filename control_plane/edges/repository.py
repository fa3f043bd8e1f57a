from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.edges.models import Cluster, EnrollmentToken, Node


class ClusterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, cluster: Cluster) -> None:
        self._session.add(cluster)
        await self._session.flush()

    async def get(self, cluster_id: str) -> Cluster | None:
        return await self._session.get(Cluster, cluster_id)

    async def get_by_name(self, name: str) -> Cluster | None:
        result = await self._session.execute(select(Cluster).where(Cluster.name == name))
        return result.scalar_one_or_none()

    async def list(self, *, after: str | None, limit: int) -> Sequence[Cluster]:
        query = select(Cluster)
        if after:
            query = query.where(Cluster.id > after)
        result = await self._session.execute(query.order_by(Cluster.id).limit(limit))
        return result.scalars().all()

    async def delete(self, cluster: Cluster) -> None:
        await self._session.delete(cluster)
        await self._session.flush()


class EnrollmentTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: EnrollmentToken) -> None:
        self._session.add(token)
        await self._session.flush()

    async def get_by_hash_for_update(self, token_hash: str) -> EnrollmentToken | None:
        result = await self._session.execute(
            select(EnrollmentToken)
            .where(EnrollmentToken.token_hash == token_hash)
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def consume(self, token_id: str, node_id: str, now: datetime) -> bool:
        """Marks the token used by `node_id`; False when another use got there first."""
        result = await self._session.execute(
            update(EnrollmentToken)
            .where(EnrollmentToken.id == token_id, EnrollmentToken.used_at.is_(None))
            .values(used_at=now, used_by_node_id=node_id)
        )
        return cast("CursorResult[Any]", result).rowcount == 1


class NodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, node: Node) -> None:
        self._session.add(node)
        await self._session.flush()

    async def get(self, node_id: str) -> Node | None:
        return await self._session.get(Node, node_id)

    async def get_by_credential(self, credential_hash: str) -> Node | None:
        result = await self._session.execute(
            select(Node).where(Node.credential_hash == credential_hash)
        )
        return result.scalar_one_or_none()

    async def list(
        self, *, cluster_id: str | None, after: str | None, limit: int
    ) -> Sequence[Node]:
        query = select(Node)
        if cluster_id:
            query = query.where(Node.cluster_id == cluster_id)
        if after:
            query = query.where(Node.id > after)
        result = await self._session.execute(query.order_by(Node.id).limit(limit))
        return result.scalars().all()

    async def presence(self, node_id: str) -> tuple[datetime | None, datetime | None] | None:
        """(last heartbeat, revoked at) of the node, in one narrow read."""
        result = await self._session.execute(
            select(Node.last_heartbeat_at, Node.revoked_at).where(Node.id == node_id)
        )
        row = result.first()
        return None if row is None else (row[0], row[1])
