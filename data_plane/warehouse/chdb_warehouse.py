"""The warehouse on chDB: the ClickHouse engine inside this process (single node).

chDB allows one process per data directory and one directory per process, and a session
must not be used from two threads at once; every call therefore runs on one dedicated
worker thread, which also keeps the event loop free while the engine works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from data_plane.warehouse.base import QueryResult, WarehouseError

T = TypeVar("T")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _quote(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def param_text(value: object) -> object:
    """chDB passes parameter values as text; arrays must be spelled in ClickHouse's own
    syntax. The server still parses the text as the declared type, so it stays data."""
    if not isinstance(value, list | tuple | set | frozenset):
        return value
    items = [str(v) for v in value]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return "[" + ",".join(items) + "]"
    joined = "\x00".join(items)
    if "'" not in joined and "\\" not in joined:
        # The common case (ids): nothing to escape, so one join does it.
        return "['" + "','".join(items) + "']" if items else "[]"
    return "[" + ",".join(_quote(v) for v in items) + "]"


class ChdbWarehouse:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="chdb"
        )
        self._session: Any = None

    def _open(self) -> Any:
        if self._session is None:
            # Imported here: chDB costs about 260 MiB and seconds on import.
            from chdb import session as chdb_session

            self._path.mkdir(parents=True, exist_ok=True)
            self._session = chdb_session.Session(str(self._path))  # type: ignore[no-untyped-call]
        return self._session

    async def _run(self, work: Callable[[Any], T]) -> T:
        def call() -> T:
            try:
                return work(self._open())
            except WarehouseError:
                raise
            except Exception as exc:  # chDB raises plain RuntimeError with the engine's text
                raise WarehouseError(str(exc).strip()) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def execute(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        params = {k: param_text(v) for k, v in (parameters or {}).items()}
        await self._run(lambda s: s.query(sql, params=params or None))

    async def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> QueryResult:
        def work(session: Any) -> QueryResult:
            params = {k: param_text(v) for k, v in (parameters or {}).items()}
            result = session.query(sql, "ArrowTable", params=params)
            table: pa.Table = result
            columns = tuple(table.column_names)
            return QueryResult(
                columns=columns,
                rows=list(zip(*table.to_pydict().values(), strict=True)) if columns else [],
            )

        return await self._run(work)

    async def insert_arrow(self, table: str, data: pa.Table) -> None:
        for name in (table, *data.column_names):
            if not IDENTIFIER.fullmatch(name):
                raise WarehouseError(f"not a plain identifier: {name!r}")
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        # Identifiers only (checked above): chDB reads the rows from the local `rows`.
        sql = f"INSERT INTO `{table}` ({columns}) SELECT {columns} FROM Python(rows)"  # noqa: S608

        def work(session: Any) -> None:
            rows = data  # noqa: F841 - chDB's Python() table function finds it by name
            session.query(sql)

        await self._run(work)

    async def close(self) -> None:
        def shutdown(session: Any) -> None:
            if session is not None:
                session.close()

        if self._session is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, shutdown, self._session
            )
            self._session = None
        self._executor.shutdown(wait=True)
