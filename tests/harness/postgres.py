"""A throwaway PostgreSQL server from Debian's binaries, for tests and benchmarks.

    with running_postgres() as url:   # postgresql+asyncpg://tidecast@127.0.0.1:PORT/tidecast
        ...

As root, initdb refuses to run, so the server runs as the `postgres` system user (created
by Debian's postgresql package) in a temporary directory it owns. The server listens on
127.0.0.1 only and is stopped, and its directory removed, when the block exits.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = "TIDECAST_REQUIRE_POSTGRES"


def postgres_bin_dir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="tidecast-pg-"))
    data = root / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        root.chmod(0o700)
    log = root / "server.log"
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "tidecast",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        try:
            subprocess.run(
                _as_server_user(
                    [
                        str(bin_dir / "createdb"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-U",
                        "tidecast",
                        "tidecast",
                    ]
                ),
                check=True,
                capture_output=True,
            )
            yield f"postgresql+asyncpg://tidecast@127.0.0.1:{port}/tidecast"
        finally:
            subprocess.run(
                _as_server_user(
                    [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                ),
                capture_output=True,
            )
    except subprocess.CalledProcessError as exc:
        details = exc.stderr.decode(errors="replace") if exc.stderr else ""
        if log.exists():
            details += log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"PostgreSQL failed to start: {details}") from exc
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Creates an empty database on the server behind `url`; returns its URL."""
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "createdb"), "-h", host, "-p", port, "-U", "tidecast", name]
        ),
        check=True,
        capture_output=True,
    )
    return url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole test session (skipped when PostgreSQL is not
    installed, unless TIDECAST_REQUIRE_POSTGRES is set, as CI does)."""
    if postgres_bin_dir() is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail("PostgreSQL binaries are missing and TIDECAST_REQUIRE_POSTGRES is set")
        pytest.skip("PostgreSQL server binaries are not installed")
    with running_postgres() as url:
        yield url


@pytest.fixture
def postgres_database_url(postgres_url: str) -> str:
    """A fresh, empty database for one test."""
    return create_database(postgres_url, f"t{time.time_ns()}")
