"""gRPC EdgeControl: the API layer between edge sidecars and the control plane's services."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from control_plane.db.lazy_session import LazySession
from control_plane.edges.hot_path import NodeAuth
from control_plane.edges.models import NodeState
from control_plane.edges.service import EdgeRegistryService, NodeLoad, NodeRegistration
from control_plane.errors import (
    AuthenticationError,
    ConflictError,
    ControlPlaneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from control_plane.hot_paths import HotPaths
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.decisions import PlayDenial, PublishDenial
from control_plane.streams.edge_decisions import EdgeDecisionService
from control_plane.tenants.service import TenantService

GRPC_CODE_BY_ERROR: dict[type[ControlPlaneError], grpc.StatusCode] = {
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    ConflictError: grpc.StatusCode.ABORTED,
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
}

PUBLISH_DENIAL_TO_PB = {
    PublishDenial.INVALID_KEY: pb.PUBLISH_DENIAL_REASON_INVALID_KEY,
    PublishDenial.STREAM_DISABLED: pb.PUBLISH_DENIAL_REASON_STREAM_DISABLED,
    PublishDenial.TENANT_SUSPENDED: pb.PUBLISH_DENIAL_REASON_TENANT_SUSPENDED,
    PublishDenial.QUOTA_EXCEEDED: pb.PUBLISH_DENIAL_REASON_QUOTA_EXCEEDED,
    PublishDenial.ALREADY_LIVE: pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE,
    PublishDenial.NODE_DRAINING: pb.PUBLISH_DENIAL_REASON_NODE_DRAINING,
}

PLAY_DENIAL_TO_PB = {
    PlayDenial.UNKNOWN_STREAM: pb.PLAY_DENIAL_REASON_UNKNOWN_STREAM,
    PlayDenial.TOKEN_REQUIRED: pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED,
    PlayDenial.TENANT_SUSPENDED: pb.PLAY_DENIAL_REASON_TENANT_SUSPENDED,
}

_MAX_KEY_LEN = 512

Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]


def node_credential(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    raise AuthenticationError("missing node credential")


class EdgeControlServicer(edge_control_pb2_grpc.EdgeControlServicer):
    def __init__(
        self,
        settings: ControlPlaneSettings,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: ControlPlaneMetrics,
        hot_paths: HotPaths,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._metrics = metrics
        self._hot = hot_paths
        self._decision_counters: dict[tuple[str, str], Counter] = {}
        self._latency_children: dict[tuple[str, str], Histogram] = {}

    async def _call(
        self,
        rpc: str,
        context: Context,
        body: Callable[[AsyncSession], Awaitable[Resp]],
    ) -> Resp:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        session = LazySession(self._sessions)
        try:
            return await body(session.as_session())
        except ControlPlaneError as exc:
            code = next(
                (c for cls, c in GRPC_CODE_BY_ERROR.items() if isinstance(exc, cls)),
                grpc.StatusCode.FAILED_PRECONDITION,
            )
            await context.abort(code, exc.message)
            raise  # abort raises; this keeps type checkers satisfied
        finally:
            await session.close()
            self._latency(rpc, code.name).observe(time.perf_counter() - started)

    def _registry(self, session: AsyncSession) -> EdgeRegistryService:
        return EdgeRegistryService(session, self._settings, self._hot.edges)

    def _decisions(
        self, session: AsyncSession, registry: EdgeRegistryService
    ) -> EdgeDecisionService:
        return EdgeDecisionService(
            session,
            self._settings,
            self._hot.streams,
            tenants=TenantService(session),
            nodes=registry,
        )

    async def _node(self, registry: EdgeRegistryService, context: Context) -> NodeAuth:
        return await registry.authenticate_node(node_credential(context))

    async def EnrollNode(
        self, request: pb.EnrollNodeRequest, context: Context
    ) -> pb.EnrollNodeResponse:
        async def body(session: AsyncSession) -> pb.EnrollNodeResponse:
            if not request.enrollment_token or len(request.enrollment_token) > _MAX_KEY_LEN:
                raise AuthenticationError("missing or malformed enrollment token")
            registration = NodeRegistration(
                hostname=request.hostname[:255],
                region=request.region[:64],
                lat=request.location.lat,
                lon=request.location.lon,
                rtmp_url=request.rtmp_url[:255],
                http_url=request.http_url[:255],
                bandwidth_capacity_bps=request.bandwidth_capacity_bps,
                version=request.version[:64],
            )
            enrolled = await self._registry(session).enroll(request.enrollment_token, registration)
            return pb.EnrollNodeResponse(
                node_id=enrolled.node.id,
                node_credential=enrolled.credential,
                cluster_id=enrolled.node.cluster_id,
                heartbeat_interval_seconds=self._settings.heartbeat_interval_s,
            )

        return await self._call("EnrollNode", context, body)

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        async def body(session: AsyncSession) -> pb.HeartbeatResponse:
            registry = self._registry(session)
            auth = await self._node(registry, context)
            node = await registry.get_active_node(auth.node_id)
            await registry.heartbeat(
                node,
                NodeLoad(
                    region=request.region[:64],
                    lat=request.location.lat,
                    lon=request.location.lon,
                    cpu_percent=request.cpu_percent,
                    memory_used_bytes=request.memory_used_bytes,
                    memory_total_bytes=request.memory_total_bytes,
                    bandwidth_in_bps=request.bandwidth_in_bps,
                    bandwidth_out_bps=request.bandwidth_out_bps,
                    streams_carried=request.streams_carried,
                    viewers=request.viewers,
                ),
            )
            carried = [s.stream_id for s in request.streams if s.is_origin and s.stream_id]
            await self._decisions(session, registry).sync_node_streams(node.id, carried)
            await registry.commit()
            state = (
                pb.NODE_STATE_DRAINING if node.state == NodeState.DRAINING else pb.NODE_STATE_ACTIVE
            )
            return pb.HeartbeatResponse(
                state=state, heartbeat_interval_seconds=self._settings.heartbeat_interval_s
            )

        return await self._call("Heartbeat", context, body)

    async def AuthorizePublish(
        self, request: pb.AuthorizePublishRequest, context: Context
    ) -> pb.AuthorizePublishResponse:
        async def body(session: AsyncSession) -> pb.AuthorizePublishResponse:
            registry = self._registry(session)
            node = await self._node(registry, context)
            if not request.stream_key or len(request.stream_key) > _MAX_KEY_LEN:
                self._count("AuthorizePublish", PublishDenial.INVALID_KEY)
                return pb.AuthorizePublishResponse(
                    allowed=False,
                    denial=PUBLISH_DENIAL_TO_PB[PublishDenial.INVALID_KEY],
                    message="invalid stream key",
                )
            verdict = await self._decisions(session, registry).authorize_publish(
                request.stream_key, node_id=node.node_id, node_draining=node.draining
            )
            self._count("AuthorizePublish", verdict.denial)
            if verdict.denial is not None:
                return pb.AuthorizePublishResponse(
                    allowed=False,
                    denial=PUBLISH_DENIAL_TO_PB[verdict.denial],
                    message=verdict.denial.value.replace("_", " "),
                    stream_id=verdict.stream_id
                    if verdict.denial is not PublishDenial.INVALID_KEY
                    else "",
                    tenant_id=verdict.tenant_id
                    if verdict.denial is not PublishDenial.INVALID_KEY
                    else "",
                )
            return pb.AuthorizePublishResponse(
                allowed=True,
                stream_id=verdict.stream_id,
                tenant_id=verdict.tenant_id,
                playback_id=verdict.playback_id,
                settings=common_pb2.StreamSettings(
                    recording=verdict.recording,
                    transcode_profile=verdict.transcode_profile,
                    private_playback=verdict.private_playback,
                    segment_duration_ms=self._settings.segment_duration_ms,
                ),
                cache_ttl_ms=self._settings.decision_cache_ttl_ms,
            )

        return await self._call("AuthorizePublish", context, body)

    async def AuthorizePlay(
        self, request: pb.AuthorizePlayRequest, context: Context
    ) -> pb.AuthorizePlayResponse:
        async def body(session: AsyncSession) -> pb.AuthorizePlayResponse:
            registry = self._registry(session)
            await self._node(registry, context)
            token = request.token if request.HasField("token") else None
            if len(request.playback_id) > 64 or (token is not None and len(token) > 4096):
                self._count("AuthorizePlay", PlayDenial.UNKNOWN_STREAM)
                return pb.AuthorizePlayResponse(
                    allowed=False,
                    denial=pb.PLAY_DENIAL_REASON_UNKNOWN_STREAM,
                    message="unknown stream",
                )
            verdict = await self._decisions(session, registry).authorize_play(
                request.playback_id, token
            )
            self._count("AuthorizePlay", verdict.denial)
            if verdict.denial is not None:
                return pb.AuthorizePlayResponse(
                    allowed=False,
                    denial=PLAY_DENIAL_TO_PB[verdict.denial],
                    message=verdict.denial.value.replace("_", " "),
                )
            return pb.AuthorizePlayResponse(
                allowed=True,
                stream_id=verdict.stream_id,
                tenant_id=verdict.tenant_id,
                cache_ttl_ms=self._settings.decision_cache_ttl_ms,
            )

        return await self._call("AuthorizePlay", context, body)

    def _count(self, rpc: str, denial: PublishDenial | PlayDenial | None) -> None:
        key = (rpc, denial.value if denial else "")
        counter = self._decision_counters.get(key)
        if counter is None:
            outcome = "allowed" if denial is None else "denied"
            counter = self._metrics.grpc_decisions.labels(rpc, outcome, key[1])
            self._decision_counters[key] = counter
        counter.inc()

    def _latency(self, rpc: str, code: str) -> Histogram:
        # Resolving labelled children once keeps the per-call cost to one dict lookup.
        child = self._latency_children.get((rpc, code))
        if child is None:
            child = self._metrics.grpc_latency.labels(rpc, code)
            self._latency_children[(rpc, code)] = child
        return child
