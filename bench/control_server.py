"""Runs the control plane (REST + gRPC) in its own process for benchmarks.

    python bench/control_server.py --database-url URL --http-port P --grpc-port Q --token-file F

Migrates the database, creates a platform token, writes it to --token-file, serves until
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from control_plane.app import create_app, open_database
from control_plane.auth.principal import Scope
from control_plane.auth.service import AuthService
from control_plane.grpc_server import create_grpc_server
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def main(args: argparse.Namespace) -> None:
    settings = ControlPlaneSettings(
        database_url=args.database_url,
        signing_secret=SecretStr("b" * 48),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
    )
    metrics = ControlPlaneMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with open_database(settings, migrate=True) as database:
        async with database.session_factory() as session:
            issued = await AuthService(session, settings).create_api_token(
                None, "bench", list(Scope)
            )
        Path(args.token_file).write_text(issued.secret)
        grpc_server, _ = create_grpc_server(settings, database, metrics)
        await grpc_server.start()
        http = _Server(
            uvicorn.Config(
                create_app(settings, database, metrics),
                host="127.0.0.1",
                port=args.http_port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        task = asyncio.create_task(http.serve())
        await stop.wait()
        http.should_exit = True
        await grpc_server.stop(1)
        await task


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    asyncio.run(main(parser.parse_args()))
