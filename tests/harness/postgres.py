"""A throwaway PostgreSQL server from Debian's binaries, for tests and benchmarks.

As a pytest plugin (registered in tests/conftest.py) it provides:

- ``postgres_url`` (session): one server for the whole session; yields the SQLAlchemy URL
  ``postgresql+asyncpg://tidecast@127.0.0.1:PORT/tidecast`` of a database on it.
- ``postgres_database_url`` (function): a factory; each call creates a fresh, empty
  database on that server (``CREATE DATABASE ... TEMPLATE template0``) and returns its URL.

Outside pytest, ``with running_postgres() as url: ...`` does the same for one block.

initdb refuses to run as root, so as root the server runs as the ``postgres`` system user
(created by Debian's postgresql package) in a temporary directory it owns. The server
listens on 127.0.0.1 only, keeps its unix socket inside that directory, trades durability
for speed (fsync, synchronous_commit and full_page_writes off), and is stopped and its
directory removed when the block exits, whatever happened inside it.

Tests that use the server are skipped when no PostgreSQL server binaries are installed,
unless ``TIDECAST_REQUIRE_POSTGRES`` is set (CI sets it): then that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

REQUIRE_ENV = "TIDECAST_REQUIRE_POSTGRES"
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "tidecast"
DATABASE = "tidecast"
SERVER_USER = "postgres"
POSTGRES_FIXTURES = frozenset({"postgres_url", "postgres_database_url"})

_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 60.0
# sun_path holds 108 bytes; the socket file is ".s.PGSQL.<port>" inside the directory.
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SERVER_URL = re.compile(
    r"(?P<base>[^:]+://(?P<user>[^@/:]+)@(?P<host>[^:/]+):(?P<port>\d+))/[^/?]*"
)


class PostgresUnavailableError(RuntimeError):
    """The server binaries are missing, or the server could not be started."""


def postgres_bin_dir(debian_root: Path = DEBIAN_ROOT) -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` with a server, else ``pg_ctl`` on PATH."""
    versions = []
    for candidate in debian_root.glob("*/bin"):
        major = candidate.parent.name
        if (candidate / "pg_ctl").is_file() and (candidate / "initdb").is_file():
            versions.append((int(major) if major.isdigit() else -1, major, candidate))
    if versions:
        return max(versions)[2]
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(command: list[str]) -> list[str]:
    if _running_as_root():
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return command


def _traversable_by_others(directory: Path) -> bool:
    return all(part.stat().st_mode & stat.S_IXOTH for part in [directory, *directory.parents])


def _make_server_dir() -> Path:
    """A private directory the server user owns, short enough to hold the unix socket."""
    base = Path(tempfile.gettempdir()).resolve()
    too_long = len(str(base)) + len("/tidecast-pg-xxxxxxxx") > _MAX_SOCKET_DIR_LEN
    if too_long or (_running_as_root() and not _traversable_by_others(base)):
        base = Path("/tmp")
    root = Path(tempfile.mkdtemp(prefix="tidecast-pg-", dir=base))
    if _running_as_root():
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailableError(
                f"running as root needs the '{SERVER_USER}' system user to run the server "
                "(apt-get install postgresql creates it)"
            ) from None
        shutil.chown(root, SERVER_USER, SERVER_USER)
    root.chmod(0o700)
    return root


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The server user may not be able to enter the caller's working directory.
    return subprocess.run(
        command, cwd=cwd, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def _failure(what: str, exc: subprocess.CalledProcessError, log: Path) -> str:
    details = f"{what} failed ({exc.returncode}): {exc.stdout or ''}{exc.stderr or ''}"
    if log.exists():
        details += "\nserver log (tail):\n" + log.read_text(errors="replace")[-3000:]
    return details


def _wait_until_ready(bin_dir: Path, port: int, cwd: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    command = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
    command += ["-U", SUPERUSER, "-d", "postgres", "-t", "2"]
    while True:
        if subprocess.run(command, cwd=cwd, check=False).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresUnavailableError(f"PostgreSQL on port {port} never accepted connections")
        time.sleep(0.05)


def _stop(bin_dir: Path, data: Path, cwd: Path) -> None:
    if not (data / "postmaster.pid").exists():
        return
    for mode in ("fast", "immediate"):
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "-t", "30", "stop"]
        if subprocess.run(_as_server_user(stop), cwd=cwd, capture_output=True).returncode == 0:
            return


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Starts a throwaway server and yields the URL of its ``tidecast`` database."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailableError(
            "PostgreSQL server binaries not found (apt-get install postgresql)"
        )
    root = _make_server_dir()
    data, log = root / "data", root / "server.log"
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER]
        initdb += ["-E", "UTF8", "--no-locale", "--no-sync"]
        try:
            _run(_as_server_user(initdb), cwd=root)
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailableError(_failure("initdb", exc, log)) from exc
        port = _start(bin_dir, data, root, log)
        _wait_until_ready(bin_dir, port, root)
        server_url = f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{port}/postgres"
        yield create_database(server_url, DATABASE)
    finally:
        try:
            _stop(bin_dir, data, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _start(bin_dir: Path, data: Path, root: Path, log: Path) -> int:
    """Starts the server on a free port (retrying if another process takes the port
    between picking and binding it); returns the port."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        port = _free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)]
        start += ["-w", "-t", str(int(_READY_TIMEOUT_S)), "start"]
        try:
            _run(_as_server_user(start), cwd=root)
            return port
        except subprocess.CalledProcessError as exc:
            _stop(bin_dir, data, root)
            in_use = log.exists() and "could not bind" in log.read_text(errors="replace")
            if not in_use or attempt == _START_ATTEMPTS:
                raise PostgresUnavailableError(_failure("pg_ctl start", exc, log)) from exc
            log.unlink(missing_ok=True)
    raise AssertionError("unreachable")


def create_database(url: str, name: str) -> str:
    """Creates an empty database (from template0) on the server behind ``url``; returns the
    same URL pointing at the new database."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain lower-case identifier: {name!r}")
    match = _SERVER_URL.fullmatch(url)
    if match is None:
        raise ValueError(f"expected a URL like postgresql+asyncpg://USER@HOST:PORT/DB: {url}")
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailableError("PostgreSQL client binaries not found")
    command = [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    command += ["-h", match["host"], "-p", match["port"], "-U", match["user"], "-d", "postgres"]
    command += ["-c", f'CREATE DATABASE "{name}" TEMPLATE template0']
    try:
        _run(command, cwd=Path(tempfile.gettempdir()))
    except subprocess.CalledProcessError as exc:
        raise PostgresUnavailableError(f"CREATE DATABASE {name} failed: {exc.stderr}") from exc
    return f"{match['base']}/{name}"


class CreateDatabase(Protocol):
    """Creates a fresh, empty database and returns its SQLAlchemy async URL."""

    def __call__(self, name: str | None = None) -> str: ...


def require_binaries() -> None:
    """Skips the calling test when PostgreSQL is not installed, or fails it when
    TIDECAST_REQUIRE_POSTGRES says PostgreSQL must be there."""
    if postgres_bin_dir() is not None:
        return
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(
            f"PostgreSQL server binaries are missing (no {DEBIAN_ROOT}/*/bin/pg_ctl, no pg_ctl "
            f"on PATH) and {REQUIRE_ENV} is set; run scripts/bootstrap",
            pytrace=False,
        )
    pytest.skip(
        f"PostgreSQL server binaries are not installed (apt-get install postgresql); "
        f"set {REQUIRE_ENV}=1 to make this a failure"
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session: the URL of its ``tidecast`` database."""
    require_binaries()
    with running_postgres() as url:
        yield url


@pytest.fixture
def postgres_database_url(postgres_url: str) -> CreateDatabase:
    """A factory for fresh, empty databases on the session's server."""

    def create(name: str | None = None) -> str:
        return create_database(postgres_url, name or f"t_{uuid.uuid4().hex[:16]}")

    return create


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the server carry the ``postgres`` marker, so ``-m "not postgres"``
    leaves them out even where a test forgot the marker."""
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
