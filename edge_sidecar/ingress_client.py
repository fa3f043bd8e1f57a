"""The sidecar's gRPC client of the data plane's EventIngress.

Spooled records already are serialized `Event` messages, and a `PublishEventsRequest` is
just its repeated field 1, so the request is framed from the spooled bytes directly: no
event is parsed or serialized again on the edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from tidecast.events.v1 import ingress_pb2 as pb

from edge_sidecar.errors import CredentialRejectedError, IngressUnavailableError

METHOD = "/tidecast.events.v1.EventIngress/PublishEvents"
_EVENTS_FIELD_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def frame_request(events: Sequence[bytes]) -> bytes:
    """A serialized PublishEventsRequest holding the given serialized events."""
    return b"".join(_EVENTS_FIELD_TAG + _varint(len(e)) + e for e in events)


def _identity(data: bytes) -> bytes:
    return data


class IngressClient:
    def __init__(self, target: str, *, timeout_s: float, max_message_bytes: int) -> None:
        self._channel = grpc.aio.insecure_channel(
            target, options=[("grpc.max_send_message_length", max_message_bytes)]
        )
        self._publish = self._channel.unary_unary(
            METHOD,
            request_serializer=_identity,
            response_deserializer=pb.PublishEventsResponse.FromString,
        )
        self._timeout = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = ()

    def set_credential(self, credential: str) -> None:
        self._metadata = (("authorization", f"Bearer {credential}"),)

    async def close(self) -> None:
        await self._channel.close(grace=None)

    async def publish(self, events: Sequence[bytes]) -> pb.PublishEventsResponse:
        try:
            response: pb.PublishEventsResponse = await self._publish(
                frame_request(events), timeout=self._timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise CredentialRejectedError(exc.details() or "credential rejected") from exc
            too_large = exc.code() in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
            raise IngressUnavailableError(
                f"{exc.code().name}: {exc.details()}", too_large=too_large
            ) from exc
        return response
