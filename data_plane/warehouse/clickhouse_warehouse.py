"""The warehouse on a ClickHouse server or cluster, over HTTP with clickhouse-connect.

clickhouse-connect's async client needs aiohttp; its sync client is thread-safe for
independent queries, so calls run on a small thread pool and the event loop never
blocks. Parameters are bound by the server (`{name:Type}` in the SQL, values apart).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pyarrow as pa

from data_plane.warehouse.base import QueryResult, WarehouseError

T = TypeVar("T")


class ClickHouseWarehouse:
    def __init__(self, url: str, *, workers: int = 4, compress: bool = False) -> None:
        parts = urllib.parse.urlsplit(url)
        self._options: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or (8443 if parts.scheme == "https" else 8123),
            "username": urllib.parse.unquote(parts.username or "default"),
            "password": urllib.parse.unquote(parts.password or ""),
            "database": parts.path.strip("/") or "default",
            "secure": parts.scheme == "https",
            "compress": compress,
            "autogenerate_session_id": False,
        }
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
                raise WarehouseError(str(exc).strip()) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def execute(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        await self._run(lambda client: client.command(sql, parameters=dict(parameters or {})))

    async def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> QueryResult:
        def work(client: Any) -> QueryResult:
            result = client.query(sql, parameters=dict(parameters or {}))
            return QueryResult(
                columns=tuple(result.column_names), rows=[tuple(r) for r in result.result_rows]
            )

        return await self._run(work)

    async def insert_arrow(self, table: str, data: pa.Table) -> None:
        await self._run(lambda client: client.insert_arrow(table, data))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.get_running_loop().run_in_executor(self._executor, client.close)
        self._executor.shutdown(wait=True)
