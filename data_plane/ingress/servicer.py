"""gRPC EventIngress: node-authenticated batches of events onto the bus.

A batch is acknowledged only after the bus has every accepted event (Kafka: acks=all), so
a sidecar that gets an answer may delete the batch from its spool, and one that gets an
error keeps it and retries. Refused events are answered with their index and reason and
never retried; the rest of the batch goes through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from tidecast.events.v1 import events_pb2 as ev
from tidecast.events.v1 import ingress_pb2 as pb

from data_plane.bus.base import BusError, BusProducer
from data_plane.directory.client import (
    CredentialRefusedError,
    DirectoryClient,
    DirectoryUnavailableError,
    NodeIdentity,
)
from data_plane.ingress.batching import to_messages
from data_plane.ingress.metrics import IngressMetrics
from data_plane.ingress.recent_ids import RecentIds
from data_plane.ingress.validation import judge, streams_of
from data_plane.settings import DataPlaneSettings

logger = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_DAY_MS = 24 * 3600 * 1000


def bearer_of(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


SERVICE = "tidecast.events.v1.EventIngress"


def ingress_handler(servicer: EventIngressServicer) -> grpc.GenericRpcHandler[Any, Any]:
    """The EventIngress service with requests parsed by the servicer itself, so a malformed
    request is answered INVALID_ARGUMENT rather than gRPC's generic INTERNAL."""
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "PublishEvents": grpc.unary_unary_rpc_method_handler(
                servicer.publish_raw,
                request_deserializer=None,
                response_serializer=pb.PublishEventsResponse.SerializeToString,
            )
        },
    )


class EventIngressServicer:
    def __init__(
        self,
        settings: DataPlaneSettings,
        directory: DirectoryClient,
        producer: BusProducer,
        metrics: IngressMetrics,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._producer = producer
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._recent = RecentIds()

    async def _authenticate(self, context: Context) -> NodeIdentity:
        credential = bearer_of(context)
        if credential is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing node credential")
            raise AssertionError("unreachable")
        try:
            return await self._directory.verify_node(credential)
        except CredentialRefusedError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise
        except DirectoryUnavailableError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot verify node: {exc}")
            raise

    async def publish_raw(self, request: bytes, context: Context) -> pb.PublishEventsResponse:
        node = await self._authenticate(context)
        try:
            parsed = pb.PublishEventsRequest.FromString(request)
        except DecodeError:
            self._metrics.batches.labels("malformed").inc()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed PublishEventsRequest")
            raise
        return await self.publish(parsed, node, context)

    async def publish(
        self, request: pb.PublishEventsRequest, node: NodeIdentity, context: Context
    ) -> pb.PublishEventsResponse:
        events = request.events
        if len(events) > self._settings.ingress_max_batch_events:
            self._metrics.batches.labels("too_large").inc()
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch of {len(events)} events exceeds {self._settings.ingress_max_batch_events}",
            )
        ids = [e.event_id for e in events]
        recent = self._recent
        known = recent.known(ids)
        if not known and len(set(ids)) == len(ids):
            # The common case, decided with set operations: nothing seen before.
            fresh: list[ev.Event] = list(events)
            fresh_index = list(range(len(events)))
            duplicates = 0
        else:
            fresh, fresh_index, duplicates = [], [], 0
            seen = set(known)
            for index, event in enumerate(events):
                if ids[index] in seen:
                    duplicates += 1
                    continue
                seen.add(ids[index])
                fresh.append(event)
                fresh_index.append(index)
        try:
            owners = await self._directory.stream_owners(streams_of(fresh))
        except (DirectoryUnavailableError, CredentialRefusedError) as exc:
            self._metrics.batches.labels("directory_unavailable").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot resolve streams: {exc}")
            raise
        now_ms = self._clock_ms()
        verdict = judge(
            fresh,
            node_id=node.node_id,
            now_ms=now_ms,
            oldest_ms=now_ms - self._settings.raw_retention_days * _DAY_MS,
            owners=owners,
        )
        accepted = [fresh[i] for i in verdict.accepted]
        if accepted:
            try:
                await self._producer.send_batch(self._settings.events_topic, to_messages(accepted))
            except BusError as exc:
                self._metrics.batches.labels("bus_unavailable").inc()
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"event bus unavailable: {exc}")
                raise
            recent.remember(ids if len(accepted) == len(ids) else [e.event_id for e in accepted])
        self._metrics.batches.labels("ok").inc()
        self._metrics.accepted.inc(len(accepted))
        self._metrics.duplicates.inc(duplicates)
        rejected = [
            pb.RejectedEvent(
                index=fresh_index[i], event_id=fresh[i].event_id[:64], reason=reason.value
            )
            for i, reason in verdict.rejected
        ]
        for _, reason in verdict.rejected:
            self._metrics.rejected.labels(reason.name.lower()).inc()
        if rejected:
            logger.info(
                "node %s: %d of %d events refused (first: %s)",
                node.node_id,
                len(rejected),
                len(events),
                rejected[0].reason,
            )
        return pb.PublishEventsResponse(
            accepted=len(accepted), duplicates=duplicates, rejected=rejected
        )
