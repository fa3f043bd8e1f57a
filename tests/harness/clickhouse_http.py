"""A thin ClickHouse HTTP endpoint in front of chDB, for testing the clickhouse-connect
adapter: the real ClickHouse engine behind a stand-in transport (no ClickHouse server
package is reachable here; Debian's is from 2018).

It speaks the part of ClickHouse's HTTP interface clickhouse-connect uses:

- POST (or GET) with the SQL in the body, or in `query` with the body as insert data;
  large parameter sets as multipart form fields;
- `param_<name>` values for `{name:Type}` placeholders, `database`, `default_format`;
- every other query-string key is a setting for that one request (unknown settings fail
  as on a server), applied with SET and put back afterwards;
- results in the format the SQL's trailing `FORMAT` names (clickhouse-connect asks for
  Native), `X-ClickHouse-Format`/`-Query-Id`/`-Timezone`/`-Summary` headers;
- inserts `INSERT ... FORMAT Arrow|ArrowStream` (handed to chDB as Arrow) and any other
  format chDB reads (Native, RowBinary, ...) through a temporary file;
- request bodies compressed with gzip, deflate or lz4 (`Content-Encoding`); responses
  are sent uncompressed, which clients accept;
- errors as HTTP 500 with `X-ClickHouse-Exception-Code` and the engine's message.

chDB allows one data directory per process, and a test process that opens its own chDB
warehouse cannot open a second, so the endpoint runs as a process of its own:

    python -m tests.harness.clickhouse_http --port PORT --path DIR

As a pytest plugin it provides `clickhouse_http_url` (session scope): one endpoint for the
session on a free 127.0.0.1 port, stopped at its end. (The warehouse contract suite also
runs against a real server when TIDECAST_CLICKHOUSE_URL names one.)
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import gzip
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT_FORMAT = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
_CODE = re.compile(r"Code:\s*(\d+)")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Query-string keys of the HTTP interface that are not settings.
_NOT_SETTINGS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "buffer_size",
        "wait_end_of_query",
        "compress",
        "decompress",
        "stacktrace",
        "role",
        "client_protocol_version",
        "close_session",
    }
)


class RequestError(Exception):
    """A request the stand-in refuses before the engine sees it (bad encoding, ...)."""


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Engine:
    """One chDB session; requests take turns (a chDB session is not for two threads)."""

    def __init__(self, path: str) -> None:
        from chdb import session

        engine: Any = session.Session(path)  # type: ignore[no-untyped-call]
        self._session = engine
        self._lock = threading.Lock()
        self._database = "default"
        settings = engine.query("SELECT name, value FROM system.settings", "TSV")
        self._defaults = dict(
            line.split("\t", 1) for line in bytes(settings.bytes()).decode().splitlines()
        )

    def run(
        self,
        sql: str,
        params: dict[str, str],
        settings: dict[str, str],
        database: str,
        default_format: str,
        body: bytes,
    ) -> tuple[bytes, str]:
        with self._lock:
            if database != self._database:
                self._session.query(f"USE `{database.replace('`', '')}`")
                self._database = database
            changed = {k: v for k, v in settings.items() if self._defaults.get(k) != v}
            for name in changed:
                if not _SETTING_NAME.fullmatch(name):
                    raise RequestError(f"Code: 115. DB::Exception: Unknown setting {name!r}")
            if changed:
                self._set(changed)
            try:
                return self._run(sql, params, default_format, body)
            finally:
                if changed:
                    self._set(
                        {k: self._defaults.get(k, "") for k in changed if k in self._defaults}
                    )

    def _set(self, settings: dict[str, str]) -> None:
        assignments = ", ".join(f"{name} = {_literal(value)}" for name, value in settings.items())
        if assignments:
            self._session.query(f"SET {assignments}")

    def _run(
        self, sql: str, params: dict[str, str], default_format: str, body: bytes
    ) -> tuple[bytes, str]:
        insert = _INSERT_FORMAT.match(sql)
        if insert is not None and body:
            self._insert(insert.group(1), insert.group(2), body)
            return b"", default_format
        fmt = default_format
        found = _FORMAT.search(sql)
        if found is not None:
            fmt = found.group(1)
            sql = sql[: found.start()]
        result = self._session.query(sql, fmt, params=params or None)
        return (bytes(result.bytes()) if result is not None else b""), fmt

    def _insert(self, head: str, fmt: str, body: bytes) -> None:
        if fmt.lower() in ("arrow", "arrowstream"):
            import pyarrow as pa

            if fmt.lower() == "arrowstream":
                rows = pa.ipc.open_stream(body).read_all()
            else:
                rows = pa.ipc.open_file(body).read_all()
            columns = ", ".join(f"`{c}`" for c in rows.column_names)
            # The stand-in runs the SQL its client sent, as a ClickHouse server would.
            self._session.query(f"{head} SELECT {columns} FROM Python(rows)")  # noqa: S608
            return
        with tempfile.NamedTemporaryFile(suffix=f".{fmt}") as data:
            data.write(body)
            data.flush()
            self._session.query(f"{head} FROM INFILE {_literal(data.name)} FORMAT {fmt}")


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


def _decoded(encoding: str, body: bytes) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        return bytes(lz4.frame.decompress(body))
    raise RequestError(f"Code: 1. DB::Exception: the stand-in cannot decode {encoding!r} bodies")


def _handler(engine: _Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(length) if length else b"")

        def _serve(self, body: bytes) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
            if parsed.path == "/ping":
                self._reply(200, b"Ok.\n", {})
                return
            try:
                body = _decoded(self.headers.get("Content-Encoding", ""), body)
                if query.get("decompress") == "1":
                    raise RequestError("Code: 1. DB::Exception: native compression is not served")
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    # Large parameter sets arrive as form fields, as a server accepts them.
                    query.update(_form_fields(content_type, body))
                    body = b""
                sql = query.get("query")
                data = body
                if sql is None:
                    sql, data = body.decode(), b""
                if not sql.strip():
                    self._reply(200, b"Ok.\n", {})
                    return
                params = {k[6:]: v for k, v in query.items() if k.startswith("param_")}
                settings = {
                    k: v
                    for k, v in query.items()
                    if k not in _NOT_SETTINGS and not k.startswith("param_")
                }
                out, fmt = engine.run(
                    sql,
                    params,
                    settings,
                    query.get("database") or "default",
                    query.get("default_format") or "TabSeparated",
                    data,
                )
            except Exception as exc:
                message = str(exc).strip()
                code = _CODE.search(message)
                self._reply(
                    500,
                    message.encode() + b"\n",
                    {"X-ClickHouse-Exception-Code": code.group(1) if code else "1"},
                    query_id=query.get("query_id"),
                )
                return
            self._reply(200, out, {"X-ClickHouse-Format": fmt}, query_id=query.get("query_id"))

        def _reply(
            self,
            status: int,
            payload: bytes,
            headers: dict[str, str],
            query_id: str | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-ClickHouse-Query-Id", query_id or str(uuid.uuid4()))
            self.send_header("X-ClickHouse-Timezone", "UTC")
            self.send_header("X-ClickHouse-Server-Display-Name", "chdb-stand-in")
            self.send_header("X-ClickHouse-Summary", '{"read_rows":"0","written_rows":"0"}')
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(port: int, path: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_Engine(path)))
    server.daemon_threads = True
    server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_clickhouse_http() -> Iterator[str]:
    """Starts the endpoint on a free port in a process of its own, with a fresh chDB
    directory; yields its URL (database `default`) and stops the process on exit."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="chdb-http-") as directory:
        root = Path(__file__).resolve().parents[2]
        log_path = Path(directory) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.harness.clickhouse_http",
                    "--port",
                    str(port),
                    "--path",
                    str(Path(directory) / "data"),
                ],
                cwd=root,
                env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "proto")])},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the ClickHouse-HTTP stand-in exited at start:\n{tail}")
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{url}/ping", timeout=1) as answer,  # noqa: S310
                ):
                    if answer.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the ClickHouse-HTTP stand-in did not start in 60 s")
                time.sleep(0.1)
            yield f"{url}/default"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def clickhouse_http_url() -> Iterator[str]:
    with running_clickhouse_http() as url:
        yield url


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    arguments = parser.parse_args()
    serve(arguments.port, arguments.path)
