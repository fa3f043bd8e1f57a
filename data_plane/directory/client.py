"""The data plane's client of the control plane's Directory: callers, nodes, stream owners.

Answers are cached for the TTL the control plane gives (its own hot-cache bound), so the
ingress and the analytics API ask once per credential or stream, not once per request.
Refusals are remembered briefly too, so a flood of bad credentials does not become a
flood of control-plane calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from tidecast.directory.v1 import directory_pb2 as pb
from tidecast.directory.v1 import directory_pb2_grpc

from data_plane.directory.ttl_cache import TtlCache
from data_plane.errors import DataPlaneError

T = TypeVar("T")

#: How long a refusal (unknown credential, unknown stream) is remembered.
NEGATIVE_TTL_S = 5.0
RESOLVE_CHUNK = 1000


class DirectoryUnavailableError(DataPlaneError):
    """The control plane could not be asked."""


class CredentialRefusedError(DataPlaneError):
    """The control plane says the credential is unknown, expired or revoked."""


@dataclass(frozen=True, slots=True)
class Caller:
    subject_id: str
    platform_admin: bool
    #: Tenant id -> scopes held on it (empty for platform operators, who see every tenant).
    grants: dict[str, frozenset[str]]

    def can_read(self, tenant_id: str) -> bool:
        return self.platform_admin or "read" in self.grants.get(tenant_id, frozenset())


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    cluster_id: str
    region: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class DirectoryClient:
    def __init__(self, target: str, *, token: str, timeout_s: float) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = directory_pb2_grpc.DirectoryStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout_s
        self._callers: TtlCache[str, Caller] = TtlCache(max_entries=10_000)
        self._nodes: TtlCache[str, NodeIdentity] = TtlCache(max_entries=10_000)
        self._owners: TtlCache[str, str] = TtlCache(max_entries=1_000_000)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
                raise CredentialRefusedError(exc.details() or "credential refused") from exc
            raise DirectoryUnavailableError(f"{exc.code().name}: {exc.details()}") from exc

    async def authenticate(self, bearer: str) -> Caller:
        key = _digest(bearer)
        hit, caller = self._callers.get(key)
        if hit:
            if caller is None:
                raise CredentialRefusedError("credential refused")
            return caller
        request = pb.AuthenticateRequest(bearer=bearer)
        try:
            response = await self._call(
                lambda: self._stub.Authenticate(
                    request, timeout=self._timeout, metadata=self._metadata
                )
            )
        except CredentialRefusedError:
            self._callers.put(key, None, NEGATIVE_TTL_S)
            raise
        caller = Caller(
            subject_id=response.subject_id,
            platform_admin=response.platform_admin,
            grants={g.tenant_id: frozenset(g.scopes) for g in response.grants},
        )
        self._callers.put(key, caller, response.cache_ttl_s)
        return caller

    async def verify_node(self, credential: str) -> NodeIdentity:
        key = _digest(credential)
        hit, node = self._nodes.get(key)
        if hit:
            if node is None:
                raise CredentialRefusedError("unknown or revoked node credential")
            return node
        request = pb.VerifyNodeRequest(node_credential=credential)
        try:
            response = await self._call(
                lambda: self._stub.VerifyNode(
                    request, timeout=self._timeout, metadata=self._metadata
                )
            )
        except CredentialRefusedError:
            self._nodes.put(key, None, NEGATIVE_TTL_S)
            raise
        node = NodeIdentity(response.node_id, response.cluster_id, response.region)
        self._nodes.put(key, node, response.cache_ttl_s)
        return node

    async def stream_owners(self, stream_ids: Iterable[str]) -> dict[str, str | None]:
        """Stream id -> owning tenant id, or None for a stream the control plane does not know."""
        answer: dict[str, str | None] = {}
        missing: list[str] = []
        for stream_id in dict.fromkeys(stream_ids):
            hit, tenant = self._owners.get(stream_id)
            if hit:
                answer[stream_id] = tenant
            else:
                missing.append(stream_id)
        for start in range(0, len(missing), RESOLVE_CHUNK):
            chunk = missing[start : start + RESOLVE_CHUNK]
            answer.update(await self._resolve(chunk))
        return answer

    async def _resolve(self, stream_ids: Sequence[str]) -> dict[str, str | None]:
        request = pb.ResolveStreamsRequest(stream_ids=stream_ids)
        response = await self._call(
            lambda: self._stub.ResolveStreams(
                request, timeout=self._timeout, metadata=self._metadata
            )
        )
        found: dict[str, str | None] = {s.stream_id: s.tenant_id for s in response.streams}
        for stream_id in stream_ids:
            tenant = found.get(stream_id)
            if tenant is None:
                found[stream_id] = None
                self._owners.put(stream_id, None, NEGATIVE_TTL_S)
            else:
                self._owners.put(stream_id, tenant, response.cache_ttl_s)
        return found
