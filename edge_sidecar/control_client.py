"""The sidecar's gRPC client of EdgeControl. gRPC errors are translated here, once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc

from edge_sidecar.errors import ControlUnavailableError, CredentialRejectedError
from media_plane.edge_engine import MediaProtocol

T = TypeVar("T")

#: The engine's protocols as the contracts name them: `MEDIA_PROTOCOL_<NAME>` for every
#: member, so a protocol the proto enum lacks fails here, at start, not on the wire.
PROTOCOLS: dict[MediaProtocol, common_pb2.MediaProtocol.ValueType] = {
    protocol: common_pb2.MediaProtocol.Value(f"MEDIA_PROTOCOL_{protocol.name}")
    for protocol in MediaProtocol
}


class ControlClient:
    def __init__(self, target: str, *, timeout_s: float) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = edge_control_pb2_grpc.EdgeControlStub(self._channel)
        self._timeout = timeout_s
        self._credential: str | None = None

    def set_credential(self, credential: str) -> None:
        self._credential = credential

    async def close(self) -> None:
        await self._channel.close(grace=None)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        if self._credential is None:
            raise CredentialRejectedError("the node has no credential yet")
        return (("authorization", f"Bearer {self._credential}"),)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise CredentialRejectedError(exc.details() or "credential rejected") from exc
            raise ControlUnavailableError(f"{exc.code().name}: {exc.details()}") from exc

    async def enroll(self, token: str, request: pb.EnrollNodeRequest) -> pb.EnrollNodeResponse:
        request.enrollment_token = token
        return await self._call(lambda: self._stub.EnrollNode(request, timeout=self._timeout))

    async def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        metadata = self._metadata()
        return await self._call(
            lambda: self._stub.Heartbeat(request, timeout=self._timeout, metadata=metadata)
        )

    async def authorize_publish(
        self, stream_key: str, protocol: MediaProtocol, client_ip: str
    ) -> pb.AuthorizePublishResponse:
        request = pb.AuthorizePublishRequest(
            stream_key=stream_key,
            protocol=PROTOCOLS[protocol],
            client_ip=client_ip,
        )
        metadata = self._metadata()
        return await self._call(
            lambda: self._stub.AuthorizePublish(request, timeout=self._timeout, metadata=metadata)
        )

    async def authorize_play(
        self, playback_id: str, token: str | None, client_ip: str, protocol: MediaProtocol
    ) -> pb.AuthorizePlayResponse:
        request = pb.AuthorizePlayRequest(
            playback_id=playback_id,
            client_ip=client_ip,
            protocol=PROTOCOLS[protocol],
        )
        if token is not None:
            request.token = token
        metadata = self._metadata()
        return await self._call(
            lambda: self._stub.AuthorizePlay(request, timeout=self._timeout, metadata=metadata)
        )
