"""The session's one chDB warehouse.

chDB lets a process open a single data directory, so every test in the pytest process
that needs the in-process warehouse shares this one (migrated once); tests keep out of
each other's way with their own tenant ids. Other warehouses (the ClickHouse-HTTP stand-in)
run in processes of their own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from data_plane.warehouse.base import Warehouse
from data_plane.warehouse.chdb_warehouse import ChdbWarehouse
from data_plane.warehouse.schema import migrate

RAW_RETENTION_DAYS = 30


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Runs a coroutine on a loop of its own, also when a test's loop is running (the first
    user may be an async fixture)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def chdb_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    warehouse = ChdbWarehouse(tmp_path_factory.mktemp("chdb") / "data")
    _run(migrate(warehouse, raw_retention_days=RAW_RETENTION_DAYS))
    try:
        yield warehouse
    finally:
        _run(warehouse.close())
