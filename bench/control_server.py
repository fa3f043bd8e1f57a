"""Runs the control plane (REST + gRPC) in its own process for benchmarks.

    python bench/control_server.py --database-url URL --http-port P --grpc-port Q --token-file F

Migrates the database, creates a platform admin and token, writes the token to
--token-file, and serves like `tidecast control serve` (on uvloop) until SIGTERM.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import SecretStr

from control_plane.serve import bootstrap_admin, run_on_uvloop, serve
from control_plane.settings import ControlPlaneSettings


async def main(args: argparse.Namespace) -> None:
    settings = ControlPlaneSettings(
        database_url=args.database_url,
        signing_secret=SecretStr("b" * 48),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
    )
    _, token = await bootstrap_admin(settings, "bench@tidecast.test", "bench-password")
    if token is None:
        raise SystemExit("the benchmark database already has a platform admin")
    Path(args.token_file).write_text(token)
    await serve(settings, migrate=False, announce=lambda _line: None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    run_on_uvloop(main(parser.parse_args()))
