"""The warehouse on a ClickHouse server or cluster, over HTTP with clickhouse-connect.

clickhouse-connect's async client (`get_async_client`) is built on aiohttp, which is not a
dependency of ours; its sync client is thread-safe for independent queries (no HTTP session
id, so the server accepts them concurrently), so calls run on a small thread pool and the
event loop never blocks.

Parameters are bound by the server (`{name:Type}` in the SQL, the values travel apart as
`param_<name>`). Results come back as Native blocks decoded by clickhouse-connect with
`tz_mode="aware"`: UUID -> `uuid.UUID`, DateTime/DateTime64 -> aware UTC `datetime`,
Decimal -> `decimal.Decimal`. The chDB adapter decodes its results with the same reader
(`decode_native`) and renders its parameters with the same binder (`parameter_texts`), so
both adapters accept and return the same Python values.

URL: `http[s]://user:password@host:port/database[?compress=lz4]` (`compress` takes what
clickhouse-connect's `compress` takes: true, false, lz4, zstd, gzip, br; default off).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from data_plane.warehouse.base import QueryResult, WarehouseError

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

#: Insert settings for every block. ReplacingMergeTree and AggregatingMergeTree would
#: otherwise collapse each inserted block on the way in (`optimize_on_insert`): a sort and
#: merge per block that cost most of an `events` insert with its views. Merges and FINAL
#: still collapse duplicates, and the sink inserts blocks that hold none.
INSERT_SETTINGS: dict[str, object] = {"optimize_on_insert": 0}

_QUOTED = str.maketrans({"\\": "\\\\", "'": "\\'"})
#: A server-side placeholder, `{name:Type}`.
_PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_][A-Za-z0-9_]*\s*:")


def _array_text(value: object) -> str | None:
    """ClickHouse's literal for a flat list of strings, UUIDs or integers, or None for
    anything else. clickhouse-connect renders arrays character by character, too slow for the
    sink's thousands of ids."""
    if not isinstance(value, list | set | frozenset):
        return None
    items = list(value)
    if all(type(item) is int for item in items):
        return "[" + ",".join(map(str, items)) + "]"
    if not all(isinstance(item, str | uuid.UUID) for item in items):
        return None
    texts = [str(item) for item in items]
    joined = "".join(texts)
    if "'" in joined or "\\" in joined:
        texts = [text.translate(_QUOTED) for text in texts]
    return "['" + "','".join(texts) + "']" if texts else "[]"


class _Rendered:
    """A parameter already rendered as ClickHouse text. clickhouse-connect's binder
    passes objects it does not know through `str()`, so the text reaches the server
    unchanged."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def bind(sql: str, parameters: Mapping[str, object] | None) -> dict[str, object] | None:
    """The parameters as clickhouse-connect's `parameters=` should get them, or None."""
    # Without a `{name:Type}` placeholder clickhouse-connect would format the values into
    # the SQL on the client (%-style); this interface binds on the server only.
    if not parameters or not _PLACEHOLDER.search(sql):
        return None
    bound: dict[str, object] = {}
    for name, value in parameters.items():
        array = _array_text(value)
        bound[name] = value if array is None else _Rendered(array)
    return bound


def parameter_texts(sql: str, parameters: Mapping[str, object] | None) -> dict[str, str] | None:
    """name -> the text ClickHouse parses for `{name:Type}`, exactly what this adapter
    sends a server as `param_<name>` (clickhouse-connect's binder, time zone UTC). The
    server parses the text as the declared type, so a value is always data."""
    bound = bind(sql, parameters)
    if bound is None:
        return None
    from clickhouse_connect.driver.binding import bind_query

    _, texts = bind_query(sql, bound, UTC)
    return {name.removeprefix("param_"): str(text) for name, text in texts.items()}


class _Bytes:
    """One Native response held in memory, in the shape clickhouse-connect's response
    buffer reads (its HTTP response source)."""

    __slots__ = ("data", "exception_tag", "last_message")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.last_message: bytes | None = None
        self.exception_tag: str | None = None

    @property
    def gen(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        return None


def decode_native(data: bytes) -> QueryResult:
    """Rows of a Native-format result, decoded as clickhouse-connect decodes a server's.
    An empty result has no columns: ClickHouse sends no block for it."""
    from clickhouse_connect.driver.ctypes import RespBuffCls
    from clickhouse_connect.driver.query import QueryContext
    from clickhouse_connect.driver.transform import NativeTransform

    if not data:
        return QueryResult(columns=(), rows=[])
    source = RespBuffCls(_Bytes(data))  # type: ignore[no-untyped-call]
    result: Any = NativeTransform.parse_response(source, QueryContext(tz_mode="aware"))
    return QueryResult(
        columns=tuple(result.column_names), rows=[tuple(row) for row in result.result_rows]
    )


_DRIVER_SUFFIX = re.compile(r"\s*\(for url [^)]*\)\s*$")


def engine_message(exc: BaseException) -> str:
    """The server's own error text ("Code: 62. DB::Exception: ..."), without the driver's
    preamble and the URL it appends."""
    text = str(exc).strip()
    start = text.find("Code: ")
    return _DRIVER_SUFFIX.sub("", text[start:] if start > 0 else text)


def _options(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"a ClickHouse URL is http:// or https://, not {parts.scheme!r}")
    query = dict(urllib.parse.parse_qsl(parts.query))
    compress: bool | str = query.get("compress", "false").lower()
    if compress in ("true", "1", "false", "0"):
        compress = compress in ("true", "1")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or (8443 if parts.scheme == "https" else 8123),
        "username": urllib.parse.unquote(parts.username or "default"),
        "password": urllib.parse.unquote(parts.password or ""),
        "database": urllib.parse.unquote(parts.path.strip("/")) or "default",
        "secure": parts.scheme == "https",
        "compress": compress,
        # An HTTP session serializes its queries on the server; calls here are independent.
        "autogenerate_session_id": False,
        "tz_mode": "aware",
    }


class ClickHouseWarehouse:
    def __init__(self, url: str, *, workers: int = 4) -> None:
        self._options = _options(url)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="clickhouse"
        )
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            import clickhouse_connect

            self._client = clickhouse_connect.get_client(**self._options)
        return self._client

    async def _run(self, work: Callable[[Any], T]) -> T:
        def call() -> T:
            try:
                return work(self._connect())
            except WarehouseError:
                raise
            except Exception as exc:  # clickhouse-connect's errors carry the server's text
                raise WarehouseError(engine_message(exc)) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def execute(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        bound = bind(sql, parameters)
        await self._run(lambda client: client.command(sql, parameters=bound))

    async def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> QueryResult:
        bound = bind(sql, parameters)

        def work(client: Any) -> QueryResult:
            result = client.query(sql, parameters=bound)
            return QueryResult(
                columns=tuple(result.column_names), rows=[tuple(r) for r in result.result_rows]
            )

        return await self._run(work)

    async def insert_arrow(self, table: str, data: pa.Table) -> None:
        await self._run(lambda client: client.insert_arrow(table, data, settings=INSERT_SETTINGS))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.get_running_loop().run_in_executor(self._executor, client.close)
        self._executor.shutdown(wait=True)
