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
from tidecast.events.v1 import ingress_pb2 as pb

from data_plane.bus.base import (
    TENANT_HEADER,
    BusError,
    BusProducer,
    OutgoingMessage,
    kinds_header,
)
from data_plane.directory.client import (
    CredentialRefusedError,
    DirectoryClient,
    DirectoryUnavailableError,
    NodeIdentity,
)
from data_plane.ingress.metrics import IngressMetrics
from data_plane.ingress.recent_ids import RecentIds
from data_plane.ingress.request_judging import (
    JudgedRequest,
    judge_request,
    owned_groups,
    streams_to_resolve,
)
from data_plane.ingress.validation import Rejection
from data_plane.settings import DataPlaneSettings
from data_plane.worker_processes import WorkerProcesses, WorkerUnavailableError

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
        workers: WorkerProcesses | None = None,
    ) -> None:
        self._settings = settings
        self._directory = directory
        self._producer = producer
        self._metrics = metrics
        self._clock_ms = clock_ms
        self._recent = RecentIds()
        #: Processes that judge requests (parsing and per-event checks) off the loop;
        #: with none, the loop judges them.
        self._workers = workers or WorkerProcesses(0)

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
        window = self._time_window()
        judged = await self._judge(request, node, window)
        if judged.malformed:
            await self._refuse_malformed(context)
        if judged.too_many:
            await self._refuse_too_many(judged.too_many, context)
        known = self._recent.known(judged.ids)
        if known:
            # Ids the ingress already produced (a retry, rare): judged again without them,
            # here, since only the loop holds the memory of recent ids.
            judged = judge_request(
                request, node.node_id, *window, self._settings.ingress_max_batch_events, known
            )
        owners = await self._owners(streams_to_resolve(judged), context)
        groups, rejected = owned_groups(judged, owners)
        messages: list[OutgoingMessage] = []
        accepted = 0
        for group in groups:
            key = (group.stream_id or node.node_id).encode()
            headers = ((TENANT_HEADER, group.tenant_id.encode()), kinds_header(group.kinds))
            messages.extend(
                OutgoingMessage(key=key, value=v, headers=headers) for v in group.values
            )
            accepted += len(group.indexes)
        ids = judged.ids
        if messages:
            await self._produce(messages, context)
            self._recent.remember(
                ids if accepted == len(ids) else [ids[i] for group in groups for i in group.indexes]
            )
        return self._answer(
            node,
            len(ids),
            accepted,
            judged.repeated,
            [
                pb.RejectedEvent(index=i, event_id=ids[i][:64], reason=reason.value)
                for i, reason in rejected
            ],
            [reason for _, reason in rejected],
        )

    async def _judge(
        self, request: bytes, node: NodeIdentity, window: tuple[int, int]
    ) -> JudgedRequest:
        """`judge_request` on a worker process (with none, or after a worker died, on
        the loop)."""
        arguments = (request, node.node_id, *window, self._settings.ingress_max_batch_events)
        try:
            return await self._workers.run(judge_request, *arguments)
        except WorkerUnavailableError as exc:
            logger.warning("ingress worker died, judging this batch on the loop: %s", exc)
            return judge_request(*arguments)

    def _time_window(self) -> tuple[int, int]:
        """(now, oldest acceptable `occurred_at`), epoch ms."""
        now_ms = self._clock_ms()
        return now_ms, now_ms - self._settings.raw_retention_days * _DAY_MS

    async def _refuse_malformed(self, context: Context) -> None:
        self._metrics.batches.labels("malformed").inc()
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "malformed PublishEventsRequest")

    async def _refuse_too_many(self, events: int, context: Context) -> None:
        self._metrics.batches.labels("too_large").inc()
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"batch of {events} events exceeds {self._settings.ingress_max_batch_events}",
        )

    async def _owners(self, streams: set[str], context: Context) -> dict[str, str | None]:
        """stream id -> owning tenant (None: unknown), or UNAVAILABLE."""
        try:
            return await self._directory.stream_owners(streams)
        except (DirectoryUnavailableError, CredentialRefusedError) as exc:
            self._metrics.batches.labels("directory_unavailable").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot resolve streams: {exc}")
            raise

    async def _produce(self, messages: list[OutgoingMessage], context: Context) -> None:
        """Puts `messages` on the bus (acknowledged), or UNAVAILABLE."""
        try:
            await self._producer.send_batch(self._settings.events_topic, messages)
        except BusError as exc:
            self._metrics.batches.labels("bus_unavailable").inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"event bus unavailable: {exc}")
            raise

    def _answer(
        self,
        node: NodeIdentity,
        received: int,
        accepted: int,
        duplicates: int,
        rejected: list[pb.RejectedEvent],
        reasons: list[Rejection],
    ) -> pb.PublishEventsResponse:
        self._metrics.batches.labels("ok").inc()
        self._metrics.accepted.inc(accepted)
        self._metrics.duplicates.inc(duplicates)
        for reason in reasons:
            self._metrics.rejected.labels(reason.name.lower()).inc()
        if rejected:
            logger.info(
                "node %s: %d of %d events refused (first: %s)",
                node.node_id,
                len(rejected),
                received,
                rejected[0].reason,
            )
        return pb.PublishEventsResponse(accepted=accepted, duplicates=duplicates, rejected=rejected)
