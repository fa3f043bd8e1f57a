"""REST routes for platform operators: clusters, enrollment tokens, nodes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from control_plane.db.base import utcnow
from control_plane.edges.hot_path import EdgesHotPath
from control_plane.edges.models import Cluster, Node
from control_plane.edges.schemas import (
    ClusterCreate,
    ClusterPublic,
    EnrollmentTokenCreate,
    EnrollmentTokenPublic,
    NodePublic,
)
from control_plane.edges.service import EdgeRegistryService
from control_plane.edges.status import node_status
from control_plane.http.deps import PageDep, PrincipalDep, SessionDep, SettingsDep, app_state
from control_plane.http.pagination import make_page
from control_plane.http.schemas import Page
from control_plane.settings import ControlPlaneSettings

router = APIRouter(tags=["edges"])

EdgesHotPathDep = Annotated[EdgesHotPath, Depends(app_state("edges_hot_path", EdgesHotPath))]


def cluster_public(cluster: Cluster) -> ClusterPublic:
    return ClusterPublic(
        id=cluster.id, name=cluster.name, region=cluster.region, created_at=cluster.created_at
    )


def node_public(node: Node, settings: ControlPlaneSettings) -> NodePublic:
    return NodePublic(
        id=node.id,
        cluster_id=node.cluster_id,
        hostname=node.hostname,
        region=node.region,
        lat=node.lat,
        lon=node.lon,
        rtmp_url=node.rtmp_url,
        http_url=node.http_url,
        status=node_status(node, utcnow(), settings.node_stale_after_s),
        enrolled_at=node.enrolled_at,
        last_heartbeat_at=node.last_heartbeat_at,
        cpu_percent=node.cpu_percent,
        memory_used_bytes=node.memory_used_bytes,
        memory_total_bytes=node.memory_total_bytes,
        bandwidth_in_bps=node.bandwidth_in_bps,
        bandwidth_out_bps=node.bandwidth_out_bps,
        bandwidth_capacity_bps=node.bandwidth_capacity_bps,
        streams_carried=node.streams_carried,
        viewers=node.viewers,
        version=node.version,
    )


@router.post(
    "/v1/clusters",
    response_model=ClusterPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_cluster",
)
async def create_cluster(
    body: ClusterCreate, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> ClusterPublic:
    principal.require_platform_admin()
    service = EdgeRegistryService(session, settings)
    return cluster_public(await service.create_cluster(body.name, body.region))


@router.get("/v1/clusters", response_model=Page[ClusterPublic], operation_id="list_clusters")
async def list_clusters(
    principal: PrincipalDep, session: SessionDep, settings: SettingsDep, page: PageDep
) -> Page[ClusterPublic]:
    principal.require_platform_admin()
    rows = await EdgeRegistryService(session, settings).list_clusters(
        after=page.cursor, limit=page.limit + 1
    )
    return make_page(rows, page.limit, cluster_public)


@router.get("/v1/clusters/{cluster_id}", response_model=ClusterPublic, operation_id="get_cluster")
async def get_cluster(
    cluster_id: str, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> ClusterPublic:
    principal.require_platform_admin()
    return cluster_public(await EdgeRegistryService(session, settings).get_cluster(cluster_id))


@router.delete("/v1/clusters/{cluster_id}", status_code=204, operation_id="delete_cluster")
async def delete_cluster(
    cluster_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: EdgesHotPathDep,
) -> None:
    principal.require_platform_admin()
    await EdgeRegistryService(session, settings, hot_path).delete_cluster(cluster_id)


@router.post(
    "/v1/clusters/{cluster_id}/enrollment-tokens",
    response_model=EnrollmentTokenPublic,
    status_code=status.HTTP_201_CREATED,
    operation_id="create_enrollment_token",
)
async def create_enrollment_token(
    cluster_id: str,
    body: EnrollmentTokenCreate,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
) -> EnrollmentTokenPublic:
    principal.require_platform_admin()
    token, expires_at = await EdgeRegistryService(session, settings).create_enrollment_token(
        cluster_id, body.ttl_seconds
    )
    return EnrollmentTokenPublic(token=token, cluster_id=cluster_id, expires_at=expires_at)


@router.get("/v1/nodes", response_model=Page[NodePublic], operation_id="list_nodes")
async def list_nodes(
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    page: PageDep,
    cluster_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[NodePublic]:
    principal.require_platform_admin()
    rows = await EdgeRegistryService(session, settings).list_nodes(
        cluster_id=cluster_id, after=page.cursor, limit=page.limit + 1
    )
    return make_page(rows, page.limit, lambda n: node_public(n, settings))


@router.get("/v1/nodes/{node_id}", response_model=NodePublic, operation_id="get_node")
async def get_node(
    node_id: str, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> NodePublic:
    principal.require_platform_admin()
    node = await EdgeRegistryService(session, settings).get_node(node_id)
    return node_public(node, settings)


@router.post("/v1/nodes/{node_id}/drain", response_model=NodePublic, operation_id="drain_node")
async def drain_node(
    node_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: EdgesHotPathDep,
) -> NodePublic:
    principal.require_platform_admin()
    node = await EdgeRegistryService(session, settings, hot_path).set_draining(node_id, True)
    return node_public(node, settings)


@router.post("/v1/nodes/{node_id}/undrain", response_model=NodePublic, operation_id="undrain_node")
async def undrain_node(
    node_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: EdgesHotPathDep,
) -> NodePublic:
    principal.require_platform_admin()
    node = await EdgeRegistryService(session, settings, hot_path).set_draining(node_id, False)
    return node_public(node, settings)


@router.post("/v1/nodes/{node_id}/revoke", response_model=NodePublic, operation_id="revoke_node")
async def revoke_node(
    node_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hot_path: EdgesHotPathDep,
) -> NodePublic:
    principal.require_platform_admin()
    node = await EdgeRegistryService(session, settings, hot_path).revoke_node(node_id)
    return node_public(node, settings)
