"""Runs the data plane's roles: ingress (gRPC -> bus), ingest (bus -> warehouse) and api
(analytics REST + realtime WebSocket), any subset in one process.

At scale each role runs in its own processes against Kafka and a ClickHouse server; in
single-node mode (`tidecast up`) all three share one process, the in-process bus and the
chDB warehouse, which only one process may hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import grpc
import uvicorn
from prometheus_client import CollectorRegistry

from data_plane.analytics.queries import AnalyticsQueries
from data_plane.app import create_api_app
from data_plane.backends import open_bus, open_warehouse
from data_plane.bus.base import EventBus
from data_plane.directory.client import DirectoryClient
from data_plane.ingest.consumer import IngestConsumer
from data_plane.ingest.dead_letters import DeadLetters
from data_plane.ingest.metrics import IngestMetrics
from data_plane.ingest.writers import batch_writer
from data_plane.ingress.metrics import IngressMetrics
from data_plane.ingress.servicer import EventIngressServicer, ingress_handler
from data_plane.realtime.hub import RealtimeHub, Seeder, TenantSeed
from data_plane.settings import DataPlaneSettings
from data_plane.warehouse.base import Warehouse
from data_plane.warehouse.event_sink import EventSink
from data_plane.warehouse.schema import migrate
from data_plane.warehouse.viewer_counts import ViewerCounts
from data_plane.worker_processes import WorkerProcesses

logger = logging.getLogger(__name__)


class Role(StrEnum):
    INGRESS = "ingress"
    INGEST = "ingest"
    API = "api"


ALL_ROLES = (Role.INGRESS, Role.INGEST, Role.API)


class _Uvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: the process entry point owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class DataPlane:
    settings: DataPlaneSettings
    bus: EventBus
    warehouse: Warehouse | None = None
    ingress_port: int | None = None
    api_port: int | None = None
    consumer: IngestConsumer | None = None
    hub: RealtimeHub | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    #: Tasks whose end means the data plane failed.
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def listening_socket(host: str, port: int) -> socket.socket:
    """The API's socket, bound here so that a port in use fails the start with an OSError
    whose `filename` is "host:port" (uvicorn would log it and exit its task)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, f"{host}:{port}") from exc


async def _start_uvicorn(
    server: uvicorn.Server, sock: socket.socket
) -> tuple[asyncio.Task[None], int]:
    task = asyncio.create_task(server.serve([sock]), name="data-plane-http")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the data-plane HTTP server did not start")
        await asyncio.sleep(0.02)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return task, port


#: How far back the hub looks for streams still live when it starts following a tenant.
LIVE_LOOKBACK_MS = 7 * 24 * 3600 * 1000


def realtime_seeder(analytics: AnalyticsQueries, settings: DataPlaneSettings) -> Seeder:
    idle_ms = int(settings.viewer_idle_timeout_s * 1000)

    async def seed(tenant_id: str) -> TenantSeed:
        now_ms = time.time_ns() // 1_000_000
        return TenantSeed(
            sessions=await analytics.watching_sessions(tenant_id, now_ms=now_ms, idle_ms=idle_ms),
            live=await analytics.live_streams(tenant_id, since_ms=now_ms - LIVE_LOOKBACK_MS),
        )

    return seed


@contextlib.asynccontextmanager
async def running_data_plane(
    settings: DataPlaneSettings,
    roles: Sequence[Role] = ALL_ROLES,
    *,
    bus: EventBus | None = None,
    warehouse: Warehouse | None = None,
    consumer_extra: dict[str, object] | None = None,
) -> AsyncIterator[DataPlane]:
    """Runs `roles` for the duration of the block. A `bus` or `warehouse` passed in is
    shared, not owned: the caller starts and closes it (one chDB directory per process)."""
    async with contextlib.AsyncExitStack() as stack:
        own_bus = bus is None
        event_bus = bus if bus is not None else open_bus(settings)
        if own_bus:
            await event_bus.start()
            stack.push_async_callback(event_bus.close)
        await event_bus.ensure_topic(settings.events_topic, settings.events_partitions)
        await event_bus.ensure_topic(settings.dead_letter_topic, 1)
        plane = DataPlane(settings=settings, bus=event_bus)

        directory: DirectoryClient | None = None
        if Role.INGRESS in roles or Role.API in roles:
            directory = DirectoryClient(
                settings.control_target,
                token=settings.control_token.get_secret_value(),
                timeout_s=settings.control_timeout_s,
            )
            stack.push_async_callback(directory.close)

        if Role.INGEST in roles or Role.API in roles:
            store = warehouse
            if store is None:
                store = open_warehouse(settings)
                stack.push_async_callback(store.close)
            await migrate(store, raw_retention_days=settings.raw_retention_days)
            plane.warehouse = store

        if Role.INGRESS in roles:
            assert directory is not None
            server = grpc.aio.server(
                options=[
                    ("grpc.max_receive_message_length", settings.ingress_max_message_bytes),
                    ("grpc.max_send_message_length", settings.ingress_max_response_bytes),
                ]
            )
            judges = WorkerProcesses(settings.ingress_workers)
            await judges.start()
            stack.push_async_callback(judges.close)
            servicer = EventIngressServicer(
                settings,
                directory,
                event_bus.producer(),
                IngressMetrics(plane.registry),
                workers=judges,
            )
            server.add_generic_rpc_handlers((ingress_handler(servicer),))
            address = f"{settings.ingress_host}:{settings.ingress_port}"
            try:
                port = server.add_insecure_port(address)
            except RuntimeError:
                port = 0
            if port == 0:
                # grpc tells no more; the filename names the address, as for the API socket.
                raise OSError(
                    errno.EADDRINUSE, "in use, or not an address of this machine", address
                )
            await server.start()
            plane.ingress_port = port

            async def stop_ingress() -> None:
                await server.stop(grace=5.0)

            stack.push_async_callback(stop_ingress)

        if Role.INGEST in roles:
            assert plane.warehouse is not None
            stop_consumer = asyncio.Event()
            sink = EventSink(plane.warehouse, ViewerCounts(plane.warehouse))
            ingest_metrics = IngestMetrics(plane.registry)
            dead_letters = DeadLetters(
                event_bus.producer(), settings.dead_letter_topic, ingest_metrics
            )
            consumer = IngestConsumer(
                settings,
                event_bus,
                sink,
                batch_writer(settings, sink, dead_letters),
                ingest_metrics,
                consumer_extra=consumer_extra,
            )
            consumer_task = asyncio.create_task(consumer.run(stop_consumer), name="ingest")
            plane.consumer = consumer
            plane.tasks.append(consumer_task)

            async def stop_ingest() -> None:
                stop_consumer.set()
                try:
                    await asyncio.wait_for(consumer_task, 30)
                except TimeoutError:
                    consumer_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await consumer_task

            stack.push_async_callback(stop_ingest)

        if Role.API in roles:
            assert directory is not None and plane.warehouse is not None
            analytics = AnalyticsQueries(plane.warehouse)
            hub = RealtimeHub(
                event_bus,
                settings.events_topic,
                queue_size=settings.realtime_client_queue,
                idle_timeout_s=settings.viewer_idle_timeout_s,
                seed=realtime_seeder(analytics, settings),
            )
            await hub.start()
            stack.push_async_callback(hub.stop)
            plane.hub = hub
            api_socket = listening_socket(settings.api_host, settings.api_port)
            stack.callback(api_socket.close)
            http = _Uvicorn(
                uvicorn.Config(
                    create_api_app(
                        settings,
                        directory=directory,
                        analytics=analytics,
                        hub=hub,
                        registry=plane.registry,
                    ),
                    host=settings.api_host,
                    port=settings.api_port,
                    log_level="warning",
                    access_log=False,
                    lifespan="off",
                    ws="websockets-sansio",
                )
            )
            http_task, plane.api_port = await _start_uvicorn(http, api_socket)
            plane.tasks.append(http_task)

            async def stop_http() -> None:
                http.should_exit = True
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(http_task, 10)

            stack.push_async_callback(stop_http)

        yield plane


async def serve(
    settings: DataPlaneSettings, roles: Sequence[Role], *, announce: Callable[[str], None]
) -> None:
    """Runs `roles` until SIGINT/SIGTERM or until one of them fails."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_data_plane(settings, roles) as plane:
            if plane.ingress_port is not None:
                announce(f"event ingress gRPC on {settings.ingress_host}:{plane.ingress_port}")
            if plane.consumer is not None:
                announce(f"ingest consumer in group {settings.ingest_group}")
            if plane.api_port is not None:
                announce(f"analytics API on http://{settings.api_host}:{plane.api_port}")
            stop_task = asyncio.create_task(stop.wait())
            try:
                # Ready means consuming: a Kafka group takes seconds to give a new member
                # its partitions, and what arrives meanwhile would wait for it.
                if plane.consumer is not None and not await _first_of(
                    plane.consumer.ready.wait(), stop_task, plane.tasks
                ):
                    return
                announce("data plane is ready")
                await _first_of(None, stop_task, plane.tasks)
            finally:
                stop_task.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _first_of(
    awaited: Coroutine[Any, Any, Any] | None,
    stop: asyncio.Task[Any],
    tasks: Sequence[asyncio.Task[None]],
) -> bool:
    """Waits for `awaited` (True), a stop (False), or a role's task ending, which is its
    failure and raises."""
    waiting = asyncio.create_task(awaited) if awaited is not None else None
    try:
        done, _ = await asyncio.wait(
            {stop, *tasks, *([waiting] if waiting else [])}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
    for task in done:
        if task in tasks:
            task.result()
            raise RuntimeError(f"{task.get_name()} stopped unexpectedly")
    return waiting is not None and waiting in done
