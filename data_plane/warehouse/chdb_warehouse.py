"""The warehouse on chDB: the ClickHouse engine inside this process (single node).

chDB allows one process per data directory and one directory per process; since chDB 4
any number of sessions may be open on it and run statements in parallel. This adapter
keeps two, each on a dedicated thread (which also keeps the event loop free while the
engine works): one for everything that writes, in order, and one for `query()`, so that
an analytics request does not wait behind an ingest write (at full load a write holds
its thread for ~0.3-0.7 s). What the writer committed is visible to the reader at once.

Results are read in Native format and decoded by clickhouse-connect's reader, the one the
server adapter uses, so both adapters return the same Python values; it was also the
fastest conversion to rows (Arrow makes UUIDs and zoned timestamps expensive and hands
DateTime over as a bare UInt32; JSON hands UUIDs, dates and decimals over as text or
floats).

Inserts hand the Arrow table to the engine through chDB's `Python()` table function,
with no serialization in between.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from data_plane.warehouse import engine_decoding
from data_plane.warehouse.base import QueryResult, WarehouseError
from data_plane.warehouse.clickhouse_warehouse import (
    INSERT_SETTINGS,
    decode_native,
    parameter_texts,
)

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")
#: The writer's session compiles no expressions: chDB compiled the same expressions of
#: every ingest write anew, which cost more of a write's CPU than the compiled code saves
#: on blocks of this size (docs/benchmarks-history.md, 2026-12-06).
WRITER_SETTINGS = {
    "compile_expressions": 0,
    "compile_aggregate_expressions": 0,
    "compile_sort_description": 0,
}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT_SETTINGS = ", ".join(f"{name} = {value}" for name, value in INSERT_SETTINGS.items())


class ChdbWarehouse:
    def __init__(self, path: Path, *, database: str = "default") -> None:
        """`database` must exist already, unless it is "default"."""
        if not IDENTIFIER.fullmatch(database):
            raise WarehouseError(f"not a plain identifier: {database!r}")
        self.path = path
        self._database = database
        self._writer = _SessionThread(path, database, "chdb", WRITER_SETTINGS)
        self._reader = _SessionThread(path, database, "chdb-read")
        self._scratch: Path | None = None
        self._scratch_names = itertools.count()

    async def _run(self, work: Callable[[Any], T]) -> T:
        return await self._writer.run(work)

    async def execute(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        params = parameter_texts(sql, parameters)
        await self._run(lambda s: s.query(sql, params=params))

    async def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> QueryResult:
        params = parameter_texts(sql, parameters)

        def work(session: Any) -> QueryResult:
            result = session.query(sql, "Native", params=params)
            return decode_native(result.bytes() if result is not None else b"")

        return await self._reader.run(work)

    async def insert_arrow(self, table: str, data: pa.Table) -> None:
        for name in (table, *data.column_names):
            if not IDENTIFIER.fullmatch(name):
                raise WarehouseError(f"not a plain identifier: {name!r}")
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        # Identifiers only (checked above): chDB reads the rows from the local `rows`.
        sql = (
            f"INSERT INTO `{table}` ({columns}) SETTINGS {_INSERT_SETTINGS} "  # noqa: S608
            f"SELECT {columns} FROM Python(rows)"
        )

        def work(session: Any) -> None:
            rows = data  # noqa: F841 - chDB's Python() table function finds it by name
            session.query(sql)

        await self._run(work)

    def _scratch_dir(self) -> Path:
        """The directory of the engine's input files and schema (on the worker thread):
        inside the data directory, emptied when first used, so a process killed mid-write
        leaves nothing behind for long."""
        if self._scratch is None:
            scratch = self.path / "ingest-scratch" / self._database
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
            (scratch / "events.proto").write_text(engine_decoding.engine_schema())
            self._scratch = scratch
        return self._scratch

    @contextlib.contextmanager
    def _engine_input(
        self, inputs: Sequence[tuple[bytes, frozenset[str]]]
    ) -> Iterator[tuple[list[engine_decoding.Read], str]]:
        """The inputs (bytes of `engine_decoding.framed`, the kinds to read from them) in
        files for the engine to read, as (the reads, the settings clause naming their
        schema); on the worker thread, the files removed after."""
        scratch = self._scratch_dir()
        paths: list[Path] = []
        try:
            reads: list[engine_decoding.Read] = []
            for data, kinds in inputs:
                path = scratch / f"{next(self._scratch_names)}.bin"
                paths.append(path)
                path.write_bytes(data)
                reads.append((engine_decoding.file_source(str(path), kinds), kinds))
            yield reads, engine_decoding.settings_clause(str(scratch / "events.proto"))
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    @staticmethod
    def _inputs(
        payloads: Sequence[tuple[bytes, str]], kinds: Sequence[frozenset[str] | None] | None
    ) -> list[tuple[bytes, frozenset[str]]]:
        """The engine's inputs for messages with these kinds (None: unknown)."""
        reads = engine_decoding.reads_of(kinds if kinds is not None else [None] * len(payloads))
        return [(engine_decoding.framed(payloads, indexes), read) for read, indexes in reads]

    async def decode_batches(
        self,
        payloads: Sequence[tuple[bytes, str]],
        kinds: Sequence[frozenset[str] | None] | None = None,
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        """EventBatch messages (value, tenant header) with the kinds their headers name
        (None: unknown) -> their `events` rows and the problems of the messages that have
        one, decoded by the engine (see `engine_decoding.py`). Raises WarehouseError when
        a message is no EventBatch."""
        import pyarrow as pa

        inputs = self._inputs(payloads, kinds)

        def work(session: Any) -> pa.Table:
            with self._engine_input(inputs) as (reads, settings):
                try:
                    result = session.query(
                        engine_decoding.decode_sql(reads) + settings, "ArrowStream"
                    )
                except Exception:
                    # chDB 4.4 hands the Arrow header a failed ArrowStream query had
                    # written to the next query as its result; a throwaway query takes it.
                    session.query("SELECT 1", "CSV")
                    raise
            return pa.ipc.open_stream(result.bytes()).read_all()

        table = await self._run(work)
        return engine_decoding.split(table)

    async def write_event_batches(
        self,
        payloads: Sequence[tuple[bytes, str]],
        kinds: Sequence[frozenset[str] | None] | None = None,
    ) -> engine_decoding.EngineWrite:
        """Writes the events of EventBatch messages (value, tenant header) with the kinds
        their headers name (None: unknown) to `events`, decoded by the engine, each new
        event id once (see `engine_decoding.py`): decoded once into a temporary table,
        scanned (problems, known ids, counts), then inserted from it. Raises
        BatchRefusedError, having written nothing, when a message is no EventBatch or
        holds an event of a kind its header leaves out."""
        inputs = self._inputs(payloads, kinds)

        def work(session: Any) -> engine_decoding.EngineWrite:
            drop = f"DROP TEMPORARY TABLE IF EXISTS {engine_decoding.STAGING}"
            session.query(drop)
            try:
                with self._engine_input(inputs) as (reads, settings):
                    try:
                        session.query(engine_decoding.staging_sql(reads) + settings)
                    except Exception as exc:
                        raise engine_decoding.BatchRefusedError(str(exc).strip()) from exc
                result = session.query(engine_decoding.scan_sql(), "Native")
                scan = engine_decoding.read_scan(decode_native(result.bytes()).rows)
                inserted = scan.distinct - len(scan.known)
                if inserted:
                    sql = engine_decoding.insert_sql(_INSERT_SETTINGS, scan)
                    session.query(sql, params=parameter_texts(sql, {"known": scan.known}))
            finally:
                session.query(drop)
            return engine_decoding.EngineWrite(
                inserted=inserted,
                duplicates=scan.events - inserted,
                problems=scan.problems,
                viewer_span=scan.viewer_span,
                viewer_streams=scan.viewer_streams,
            )

        return await self._run(work)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


class _SessionThread:
    """One chDB session, used from one dedicated thread only."""

    def __init__(
        self, path: Path, database: str, name: str, settings: Mapping[str, int] | None = None
    ) -> None:
        self._path = path
        self._database = database
        self._settings = dict(settings or {})
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name
        )
        self._session: Any = None

    def _open(self) -> Any:
        if self._session is None:
            # Imported here: chDB costs about 260 MiB and seconds on import.
            from chdb import session as chdb_session

            self._path.mkdir(parents=True, exist_ok=True)
            session: Any = chdb_session.Session(str(self._path))  # type: ignore[no-untyped-call]
            # chDB takes the host's time zone; a warehouse in UTC reads parameters and
            # zone-less DateTime values the way a UTC server does, wherever it runs.
            session.query("SET session_timezone = 'UTC'")
            for name, value in self._settings.items():
                session.query(f"SET {name} = {int(value)}")
            session.query(f"USE {self._database}")
            self._session = session
        return self._session

    async def run(self, work: Callable[[Any], T]) -> T:
        def call() -> T:
            try:
                return work(self._open())
            except WarehouseError:
                raise
            except Exception as exc:  # chDB raises plain RuntimeError with the engine's text
                raise WarehouseError(str(exc).strip()) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, session.close)
        self._executor.shutdown(wait=True)
