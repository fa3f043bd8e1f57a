"""A thin ClickHouse HTTP endpoint in front of chDB, for testing the clickhouse-connect
adapter: the real ClickHouse engine behind a stand-in transport (no ClickHouse server
package is reachable here; Debian's is from 2018).

It speaks what clickhouse-connect uses: POST with the SQL in the body (or in `query`
with the body as insert data), `param_<name>` query parameters, results in the format the
SQL's trailing `FORMAT` names (Native by default), inserts of Arrow streams, and errors as
HTTP 500 with `X-ClickHouse-Exception-Code`. chDB allows one data directory per process,
so the endpoint runs as its own process:

    python -m tests.harness.clickhouse_http --port PORT --path DIR

As a pytest plugin it provides `clickhouse_http_url` (session): one endpoint for the
session, stopped at its end. If TIDECAST_CLICKHOUSE_URL is set, tests that take
`clickhouse_url` use that real server instead.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
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
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT_FORMAT = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
_CODE = re.compile(r"Code:\s*(\d+)")


class _Engine:
    def __init__(self, path: str) -> None:
        from chdb import session

        self._session = session.Session(path)
        self._lock = threading.Lock()

    def run(self, sql: str, params: dict[str, str], body: bytes) -> tuple[bytes, str]:
        insert = _INSERT_FORMAT.match(sql)
        with self._lock:
            if insert is not None and body:
                return self._insert(insert.group(1), insert.group(2), body), "TabSeparated"
            fmt = "TabSeparated"
            found = _FORMAT.search(sql)
            if found is not None:
                fmt = found.group(1)
                sql = sql[: found.start()]
            result = self._session.query(sql, fmt, params=params or None)
            return bytes(result.bytes()) if result is not None else b"", fmt

    def _insert(self, head: str, fmt: str, body: bytes) -> bytes:
        import pyarrow as pa

        if fmt.lower() not in ("arrow", "arrowstream"):
            raise ValueError(f"Code: 73. DB::Exception: the stand-in inserts Arrow only, not {fmt}")
        reader = pa.ipc.open_stream(body) if fmt.lower() == "arrowstream" else None
        rows = reader.read_all() if reader is not None else pa.ipc.open_file(body).read_all()
        columns = ", ".join(f"`{c}`" for c in rows.column_names)
        # The stand-in runs the SQL its client sent, as a ClickHouse server would.
        self._session.query(f"{head} SELECT {columns} FROM Python(rows)")  # noqa: S608
        return b""


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
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                # Large parameter sets arrive as form fields, like a server accepts them.
                query.update(_form_fields(content_type, body))
                body = b""
            sql = query.get("query")
            data = body
            if sql is None:
                sql, data = body.decode(), b""
            params = {k[6:]: v for k, v in query.items() if k.startswith("param_")}
            try:
                out, fmt = engine.run(sql, params, data)
            except Exception as exc:
                message = str(exc)
                code = _CODE.search(message)
                self._reply(
                    500,
                    message.encode(),
                    {"X-ClickHouse-Exception-Code": code.group(1) if code else "1"},
                )
                return
            self._reply(200, out, {"X-ClickHouse-Format": fmt})

        def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-ClickHouse-Query-Id", str(uuid.uuid4()))
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
    """Starts the endpoint on a free port; yields its URL (database `default`)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="chdb-http-") as directory:
        root = Path(__file__).resolve().parents[2]
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
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the ClickHouse-HTTP stand-in exited at start")
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{url}/ping", timeout=1) as answer,  # noqa: S310
                ):
                    if answer.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the ClickHouse-HTTP stand-in did not start")
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
