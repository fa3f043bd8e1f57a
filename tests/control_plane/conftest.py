"""Fixtures of the control plane's tests (what they run is in running.py).

Each backend is migrated once per session through `open_database(migrate=True)`; tests
share that database and stay out of each other's way by creating their own tenants,
clusters and users (all ids and names are unique). Each test gets its own engine, hot
caches, metrics registry, app and gRPC server, so counters and caches start empty.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from control_plane.app import open_database
from control_plane.settings import ControlPlaneSettings
from tests.control_plane.running import (
    BACKENDS,
    ControlPlane,
    make_settings,
    running_control_plane,
)
from tests.harness.postgres import create_database


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database brought to the head revision by Alembic, once per backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("control-plane") / "control.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        server: str = request.getfixturevalue("postgres_url")
        url = create_database(server, f"control_plane_{uuid.uuid4().hex[:12]}")

    async def migrate() -> None:
        async with open_database(make_settings(url), migrate=True):
            pass

    # A sync fixture drives its own short-lived loop: the engines that tests use are
    # created on each test's loop, so no connection crosses event loops.
    asyncio.run(migrate())
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture
def settings(database_url: str) -> ControlPlaneSettings:
    return make_settings(database_url)


@pytest_asyncio.fixture
async def control(settings: ControlPlaneSettings) -> AsyncIterator[ControlPlane]:
    async with running_control_plane(settings) as control:
        yield control
    await _assert_no_leftover_tasks()


async def _assert_no_leftover_tasks() -> None:
    """A test may not leave tasks running (the asyncio flavour of a goroutine leak check)."""
    current = asyncio.current_task()
    for _ in range(20):
        leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leftover:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tasks left running: {leftover}")
