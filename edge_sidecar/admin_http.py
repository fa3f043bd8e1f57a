"""The sidecar's own HTTP endpoints: /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_sidecar.metrics import EdgeMetrics


class _QuietServer(uvicorn.Server):
    """Signals belong to the process that hosts the sidecar, not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def create_admin_app(metrics: EdgeMetrics, health: Callable[[], dict[str, object]]) -> Starlette:
    async def healthz(_request: Request) -> Response:
        state = health()
        return JSONResponse(state, status_code=200 if state.get("status") == "ok" else 503)

    async def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", prometheus)])


class AdminServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server = _QuietServer(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Bound here so that a port in use fails the start with an OSError whose
        # `filename` is "host:port" (uvicorn would log it and exit its task).
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        try:
            sock = socket.create_server((self._host, self._port), family=family, backlog=2048)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"{self._host}:{self._port}") from exc
        self._task = asyncio.create_task(self._server.serve([sock]), name="edge-admin-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the admin HTTP server did not start")
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        servers = self._server.servers
        return int(servers[0].sockets[0].getsockname()[1]) if servers else 0

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, 10)
        self._task = None
