"""Use cases for the edge registry: clusters, enrollment, heartbeats, draining."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db.base import utcnow
from control_plane.edges.hot_path import EdgesHotPath, NodeAuth
from control_plane.edges.models import Cluster, EnrollmentToken, Node, NodeState
from control_plane.edges.repository import (
    ClusterRepository,
    EnrollmentTokenRepository,
    NodeRepository,
)
from control_plane.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from control_plane.ids import hash_secret, new_id, new_secret
from control_plane.settings import ControlPlaneSettings


@dataclass(frozen=True, slots=True)
class NodeRegistration:
    hostname: str
    region: str
    lat: float
    lon: float
    rtmp_url: str
    http_url: str
    bandwidth_capacity_bps: int
    version: str


@dataclass(frozen=True, slots=True)
class NodeLoad:
    region: str
    lat: float
    lon: float
    cpu_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    bandwidth_in_bps: int
    bandwidth_out_bps: int
    streams_carried: int
    viewers: int


@dataclass(frozen=True, slots=True)
class NodePresence:
    """Whether a node still holds what it publishes: its last heartbeat, its revocation."""

    last_heartbeat_at: datetime | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class EnrolledNode:
    node: Node
    credential: str


class EdgeRegistryService:
    def __init__(
        self,
        session: AsyncSession,
        settings: ControlPlaneSettings,
        hot_path: EdgesHotPath | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._hot = hot_path or EdgesHotPath.uncached()
        self._clusters = ClusterRepository(session)
        self._tokens = EnrollmentTokenRepository(session)
        self._nodes = NodeRepository(session)

    # -- clusters ---------------------------------------------------------------------

    async def create_cluster(self, name: str, region: str) -> Cluster:
        if await self._clusters.get_by_name(name) is not None:
            raise ConflictError("a cluster with this name exists")
        cluster = Cluster(id=new_id(), name=name, region=region)
        try:
            await self._clusters.add(cluster)
            await self._session.commit()
        except IntegrityError as exc:  # created concurrently under the same name
            await self._session.rollback()
            raise ConflictError("a cluster with this name exists") from exc
        return cluster

    async def get_cluster(self, cluster_id: str) -> Cluster:
        cluster = await self._clusters.get(cluster_id)
        if cluster is None:
            raise NotFoundError("cluster not found")
        return cluster

    async def list_clusters(self, *, after: str | None, limit: int) -> Sequence[Cluster]:
        return await self._clusters.list(after=after, limit=limit)

    async def delete_cluster(self, cluster_id: str) -> None:
        cluster = await self.get_cluster(cluster_id)
        await self._clusters.delete(cluster)
        await self._session.commit()
        self._hot.changed()  # its nodes' credentials went with it

    async def create_enrollment_token(self, cluster_id: str, ttl_s: int) -> tuple[str, datetime]:
        if ttl_s > self._settings.enrollment_token_max_ttl_s:
            raise InvalidRequestError(
                f"ttl_seconds may be at most {self._settings.enrollment_token_max_ttl_s}"
            )
        await self.get_cluster(cluster_id)
        token = new_secret("et", 32)
        expires_at = utcnow() + timedelta(seconds=ttl_s)
        await self._tokens.add(
            EnrollmentToken(
                id=new_id(),
                cluster_id=cluster_id,
                token_hash=hash_secret(token),
                expires_at=expires_at,
            )
        )
        await self._session.commit()
        return token, expires_at

    # -- nodes ------------------------------------------------------------------------

    async def list_nodes(
        self, *, cluster_id: str | None, after: str | None, limit: int
    ) -> Sequence[Node]:
        return await self._nodes.list(cluster_id=cluster_id, after=after, limit=limit)

    async def get_node(self, node_id: str) -> Node:
        node = await self._nodes.get(node_id)
        if node is None:
            raise NotFoundError("node not found")
        return node

    async def set_draining(self, node_id: str, draining: bool) -> Node:
        node = await self.get_node(node_id)
        node.state = NodeState.DRAINING if draining else NodeState.ACTIVE
        await self._session.commit()
        self._hot.changed()
        return node

    async def revoke_node(self, node_id: str) -> Node:
        node = await self.get_node(node_id)
        if node.revoked_at is None:
            node.revoked_at = utcnow()
            await self._session.commit()
        self._hot.changed()
        return node

    async def enroll(self, enrollment_token: str, registration: NodeRegistration) -> EnrolledNode:
        """Spends a one-shot token. The row lock (PostgreSQL) and the conditional update
        (every backend, SQLite has no row locks) stop two nodes from enrolling with one
        token."""
        now = utcnow()
        token = await self._tokens.get_by_hash_for_update(hash_secret(enrollment_token))
        if token is None or token.used_at is not None or token.expires_at <= now:
            raise AuthenticationError("invalid, used or expired enrollment token")
        node_id = new_id()
        if not await self._tokens.consume(token.id, node_id, now):
            raise AuthenticationError("invalid, used or expired enrollment token")
        credential = new_secret("nc", 32)
        node = Node(
            id=node_id,
            cluster_id=token.cluster_id,
            hostname=registration.hostname,
            region=registration.region,
            lat=registration.lat,
            lon=registration.lon,
            rtmp_url=registration.rtmp_url,
            http_url=registration.http_url,
            bandwidth_capacity_bps=registration.bandwidth_capacity_bps,
            version=registration.version,
            credential_hash=hash_secret(credential),
            state=NodeState.ACTIVE,
            enrolled_at=now,
        )
        try:
            await self._nodes.add(node)
            await self._session.commit()
        except IntegrityError as exc:
            await self._session.rollback()
            raise ConflictError("enrollment raced with another; try again") from exc
        return EnrolledNode(node=node, credential=credential)

    async def authenticate_node(self, credential: str) -> NodeAuth:
        credential_hash = hash_secret(credential)
        hit, auth = self._hot.nodes.get(credential_hash)
        if not hit:
            node = await self._nodes.get_by_credential(credential_hash)
            auth = (
                NodeAuth(node_id=node.id, draining=node.state == NodeState.DRAINING)
                if node is not None and node.revoked_at is None
                else None
            )
            self._hot.nodes.put(credential_hash, auth)
        if auth is None:
            raise AuthenticationError("unknown or revoked node credential")
        return auth

    async def presence(self, node_id: str) -> NodePresence | None:
        """None when no such node exists (its cluster was deleted)."""
        row = await self._nodes.presence(node_id)
        if row is None:
            return None
        last_heartbeat_at, revoked_at = row
        return NodePresence(last_heartbeat_at=last_heartbeat_at, revoked=revoked_at is not None)

    async def get_active_node(self, node_id: str) -> Node:
        node = await self.get_node(node_id)
        if node.revoked_at is not None:
            raise AuthenticationError("node credential revoked")
        return node

    async def heartbeat(self, node: Node, load: NodeLoad) -> Node:
        node.region = load.region or node.region
        node.lat, node.lon = load.lat, load.lon
        node.cpu_percent = load.cpu_percent
        node.memory_used_bytes = load.memory_used_bytes
        node.memory_total_bytes = load.memory_total_bytes
        node.bandwidth_in_bps = load.bandwidth_in_bps
        node.bandwidth_out_bps = load.bandwidth_out_bps
        node.streams_carried = load.streams_carried
        node.viewers = load.viewers
        node.last_heartbeat_at = utcnow()
        await self._session.flush()
        return node

    async def commit(self) -> None:
        await self._session.commit()
