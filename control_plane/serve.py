"""Runs the control plane's REST and gRPC servers in one process until SIGINT/SIGTERM.

`running_servers` is also how the single-node launcher runs the control plane beside an
edge, so both share one start-up and shutdown order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
import uvloop

from control_plane.app import Database, create_app, open_database
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.principal import Scope
from control_plane.settings import ControlPlaneSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """Runs `main` on uvloop, the loop the control plane is served on.

    uvloop, with uvicorn's httptools parser (which uvicorn picks when it is installed),
    takes much of the per-request cost of the stack: see the REST section of 2026-12-04 in
    docs/benchmarks-history.md. grpc.aio runs on it as well (the EdgeControl benchmark runs there).
    """
    return uvloop.run(main)


class _Uvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: the process entry point owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listening_socket(host: str, port: int) -> socket.socket:
    """The REST server's socket, bound here so that a port in use fails the start with an
    OSError whose `filename` is "host:port" (uvicorn would log it and exit its task)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, f"{host}:{port}") from exc


@dataclass(frozen=True)
class RunningServers:
    #: Ends only when the REST server stops (on its own, that is a failure).
    http_task: asyncio.Task[None]
    grpc_port: int


@contextlib.asynccontextmanager
async def running_servers(
    settings: ControlPlaneSettings,
    database: Database,
    metrics: ControlPlaneMetrics,
    *,
    grace_s: float = 5.0,
) -> AsyncIterator[RunningServers]:
    """Serves gRPC and REST on `database` for the duration of the block."""
    http_socket = listening_socket(settings.http_host, settings.http_port)
    try:
        grpc_server, grpc_port = create_grpc_server(settings, database, metrics)
    except BaseException:
        http_socket.close()
        raise
    await grpc_server.start()
    http = _Uvicorn(
        uvicorn.Config(
            create_app(settings, database, metrics),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    http_task = asyncio.create_task(http.serve([http_socket]), name="control-plane-http")
    try:
        yield RunningServers(http_task=http_task, grpc_port=grpc_port)
    finally:
        http.should_exit = True
        await grpc_server.stop(grace=grace_s)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(http_task, 10)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def until_stopped(servers: RunningServers, stop: asyncio.Event) -> None:
    """Returns when `stop` is set; raises if the REST server ended first."""
    stop_task = asyncio.create_task(stop.wait(), name="control-plane-stop")
    try:
        done, _ = await asyncio.wait(
            {servers.http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stop_task.cancel()
    if servers.http_task in done and not stop.is_set():
        servers.http_task.result()
        raise RuntimeError("the REST server stopped unexpectedly")


async def serve(
    settings: ControlPlaneSettings, *, migrate: bool, announce: Callable[[str], None]
) -> None:
    with stop_on_signals() as stop:
        async with (
            open_database(settings, migrate=migrate) as database,
            running_servers(settings, database, ControlPlaneMetrics()) as servers,
        ):
            announce(
                f"control plane REST on {settings.http_host}:{settings.http_port}, "
                f"gRPC on {settings.grpc_host}:{servers.grpc_port}"
            )
            await until_stopped(servers, stop)


async def migrate(settings: ControlPlaneSettings) -> None:
    async with open_database(settings, migrate=True):
        pass


async def bootstrap_admin(
    settings: ControlPlaneSettings, email: str, password: str
) -> tuple[bool, str | None]:
    """Creates the first platform admin and a platform API token for it.

    Returns (created, token); nothing is created when a platform admin exists already.
    """
    async with open_database(settings, migrate=True) as database:
        return await bootstrap_platform_admin(settings, database, email, password)


async def bootstrap_platform_admin(
    settings: ControlPlaneSettings,
    database: Database,
    email: str,
    password: str,
    *,
    label: str = "bootstrap",
) -> tuple[bool, str | None]:
    """`bootstrap_admin` on an open database."""
    async with database.session_factory() as session:
        auth = AuthService(session, settings)
        if not await auth.ensure_platform_admin(email, password):
            return False, None
        issued = await auth.create_api_token(None, label, list(Scope))
        return True, issued.secret
