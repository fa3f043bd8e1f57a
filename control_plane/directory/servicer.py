"""gRPC Directory: tells the data plane who a caller, a node or a stream's owner is.

The data plane holds no copy of the control plane's tables; it asks here and caches the
answers for `cache_ttl_s` (the same bound the control plane's own hot cache uses).
Only platform credentials may ask: the data plane runs with a platform API token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tidecast.directory.v1 import directory_pb2 as pb
from tidecast.directory.v1 import directory_pb2_grpc

from control_plane.auth.service import AuthService
from control_plane.db.lazy_session import LazySession
from control_plane.edge_control.servicer import GRPC_CODE_BY_ERROR, node_credential
from control_plane.edges.service import EdgeRegistryService
from control_plane.errors import AuthenticationError, ControlPlaneError, PermissionDeniedError
from control_plane.hot_paths import HotPaths
from control_plane.principal import Principal, PrincipalKind
from control_plane.settings import ControlPlaneSettings
from control_plane.streams.service import StreamService

MAX_RESOLVE = 1000
_MAX_CREDENTIAL_LEN = 4096

Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]


def grants_of(principal: Principal) -> list[pb.TenantGrant]:
    if principal.platform_admin:
        return []
    if principal.kind is PrincipalKind.API_TOKEN and principal.token_tenant_id is not None:
        return [
            pb.TenantGrant(
                tenant_id=principal.token_tenant_id,
                scopes=sorted(s.value for s in principal.token_scopes),
            )
        ]
    return [
        pb.TenantGrant(
            tenant_id=tenant_id,
            scopes=sorted(s.value for s in principal.scopes_for(tenant_id) or ()),
        )
        for tenant_id in sorted(principal.roles)
    ]


class DirectoryServicer(directory_pb2_grpc.DirectoryServicer):
    def __init__(
        self,
        settings: ControlPlaneSettings,
        session_factory: async_sessionmaker[AsyncSession],
        hot_paths: HotPaths,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._hot = hot_paths
        self._ttl_s = max(1, int(settings.hot_cache_ttl_s))

    async def _call(
        self, context: Context, body: Callable[[AsyncSession], Awaitable[Resp]]
    ) -> Resp:
        session = LazySession(self._sessions)
        try:
            caller = await AuthService(
                session.as_session(), self._settings, self._hot.auth
            ).authenticate(node_credential(context))
            if not caller.platform_admin:
                raise PermissionDeniedError("the directory answers platform credentials only")
            return await body(session.as_session())
        except ControlPlaneError as exc:
            code = next(
                (c for cls, c in GRPC_CODE_BY_ERROR.items() if isinstance(exc, cls)),
                grpc.StatusCode.FAILED_PRECONDITION,
            )
            await context.abort(code, exc.message)
            raise
        finally:
            await session.close()

    async def Authenticate(
        self, request: pb.AuthenticateRequest, context: Context
    ) -> pb.AuthenticateResponse:
        async def body(session: AsyncSession) -> pb.AuthenticateResponse:
            if not request.bearer or len(request.bearer) > _MAX_CREDENTIAL_LEN:
                raise AuthenticationError("missing or malformed credential")
            principal = await AuthService(session, self._settings, self._hot.auth).authenticate(
                request.bearer
            )
            return pb.AuthenticateResponse(
                subject_id=principal.subject_id,
                platform_admin=principal.platform_admin,
                grants=grants_of(principal),
                cache_ttl_s=self._ttl_s,
            )

        return await self._call(context, body)

    async def VerifyNode(
        self, request: pb.VerifyNodeRequest, context: Context
    ) -> pb.VerifyNodeResponse:
        async def body(session: AsyncSession) -> pb.VerifyNodeResponse:
            if not request.node_credential or len(request.node_credential) > _MAX_CREDENTIAL_LEN:
                raise AuthenticationError("missing or malformed node credential")
            registry = EdgeRegistryService(session, self._settings, self._hot.edges)
            auth = await registry.authenticate_node(request.node_credential)
            node = await registry.get_active_node(auth.node_id)
            return pb.VerifyNodeResponse(
                node_id=node.id,
                cluster_id=node.cluster_id,
                region=node.region,
                cache_ttl_s=self._ttl_s,
            )

        return await self._call(context, body)

    async def ResolveStreams(
        self, request: pb.ResolveStreamsRequest, context: Context
    ) -> pb.ResolveStreamsResponse:
        async def body(session: AsyncSession) -> pb.ResolveStreamsResponse:
            ids = [i for i in dict.fromkeys(request.stream_ids) if 0 < len(i) <= 64]
            if len(ids) > MAX_RESOLVE:
                raise PermissionDeniedError(f"at most {MAX_RESOLVE} stream ids per call")
            owners = await StreamService(session, self._settings).owners(ids)
            return pb.ResolveStreamsResponse(
                streams=[
                    pb.ResolvedStream(stream_id=s, tenant_id=t, playback_id=p) for s, t, p in owners
                ],
                cache_ttl_s=self._ttl_s,
            )

        return await self._call(context, body)


__all__ = ["MAX_RESOLVE", "DirectoryServicer", "grants_of"]
