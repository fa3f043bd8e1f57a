"""Runs `DirectQuery` reads on the database driver itself, on connections of its own.

Why: for the busiest reads SQLAlchemy's per-execution layers (session, connection
checkout with its greenlet hop, transaction begin and reset-on-return, result objects)
cost 3-5 times the driver's own work - measured on a page of 51 streams, 425-540 us of
CPU through `AsyncEngine.connect()` on asyncpg against 139 us for `asyncpg` alone, and
956 us against 204 us on aiosqlite. Direct reads are single statements in autocommit
mode: they see committed data and never write (SQLite's reader connection is
`query_only`). Every write still goes through sessions and services.

PostgreSQL gets a small asyncpg pool; a SQLite file gets one aiosqlite connection (one
thread: SQLite does the work under the GIL anyway); any other database, and SQLite in
memory, which a second connection would not see, run the same query through the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiosqlite
import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from control_plane.db.direct_query import DirectQuery


class DirectReader(Protocol):
    async def fetch(self, query: DirectQuery, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The query's rows, converted as a session would convert them."""
        ...

    async def close(self) -> None: ...


class AsyncpgReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, engine: AsyncEngine, max_size: int) -> AsyncpgReader:
        _, options = engine.dialect.create_connect_args(engine.url)
        # The URL's own spelling of the statement cache (0 behind PgBouncer) is kept;
        # other SQLAlchemy-only query options mean nothing to asyncpg.
        if "prepared_statement_cache_size" in options:
            options["statement_cache_size"] = options.pop("prepared_statement_cache_size")
        accepted = inspect.signature(asyncpg.connect).parameters
        pool = await asyncpg.create_pool(
            min_size=1,
            max_size=max_size,
            reset=_keep_session_state,
            **{name: value for name, value in options.items() if name in accepted},
        )
        return cls(pool)

    async def fetch(self, query: DirectQuery, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(query.sql, *query.arguments(values))
        return query.convert(rows)

    async def close(self) -> None:
        await self._pool.close()


async def _keep_session_state(_connection: asyncpg.Connection) -> None:
    # asyncpg's default reset is a round trip per release (unlisten, reset all, close
    # cursors); these connections only ever run single read statements, which leave no
    # state behind.
    return None


class SqliteReader:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @classmethod
    async def open(cls, path: str) -> SqliteReader:
        connection = await aiosqlite.connect(path, isolation_level=None, timeout=30)
        await connection.execute("PRAGMA query_only=ON")
        return cls(connection)

    async def fetch(self, query: DirectQuery, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        # One hop to aiosqlite's thread for execute and fetch together.
        rows = await self._connection.execute_fetchall(query.sql, query.arguments(values))
        return query.convert(list(rows))

    async def close(self) -> None:
        await self._connection.close()


class EngineReader:
    """The same reads through the engine, for databases without a direct reader."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def fetch(self, query: DirectQuery, values: Mapping[str, Any]) -> list[Sequence[Any]]:
        async with self._engine.connect() as connection:
            result = await connection.exec_driver_sql(query.sql, query.arguments(values))
            return query.convert(result.all())

    async def close(self) -> None:
        return None


async def open_direct_reader(engine: AsyncEngine, *, max_connections: int) -> DirectReader:
    url = engine.url
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "asyncpg":
        return await AsyncpgReader.open(engine, max_connections)
    if url.get_backend_name() == "sqlite" and url.get_driver_name() == "aiosqlite":
        path = url.database or ""
        if path and path != ":memory:" and not path.startswith("file:"):
            return await SqliteReader.open(path)
    return EngineReader(engine)
