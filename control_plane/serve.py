"""Runs the control plane's REST and gRPC servers in one process until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

import uvicorn

from control_plane.app import Database, create_app, open_database
from control_plane.auth.principal import Scope
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings

logger = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    """Uvicorn without its own signal handling: `serve` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    settings: ControlPlaneSettings, *, migrate: bool, announce: Callable[[str], None]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = ControlPlaneMetrics()
    async with open_database(settings, migrate=migrate) as database:
        grpc_server, grpc_port = create_grpc_server(settings, database, metrics)
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
        http_task = asyncio.create_task(http.serve(), name="control-plane-http")
        stop_task = asyncio.create_task(stop.wait(), name="control-plane-stop")
        announce(
            f"control plane REST on {settings.http_host}:{settings.http_port}, "
            f"gRPC on {settings.grpc_host}:{grpc_port}"
        )
        try:
            done, _ = await asyncio.wait(
                {http_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            if http_task in done:
                http_task.result()
        finally:
            stop_task.cancel()
            http.should_exit = True
            await grpc_server.stop(grace=5.0)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(http_task, 10)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


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
        return await _bootstrap(settings, database, email, password)


async def _bootstrap(
    settings: ControlPlaneSettings, database: Database, email: str, password: str
) -> tuple[bool, str | None]:
    async with database.session_factory() as session:
        auth = AuthService(session, settings)
        if not await auth.ensure_platform_admin(email, password):
            return False, None
        issued = await auth.create_api_token(None, "bootstrap", list(Scope))
        return True, issued.secret
