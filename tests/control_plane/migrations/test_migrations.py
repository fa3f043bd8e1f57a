"""The Alembic migrations, on both backends: they build exactly the models' schema, are
idempotent, and go down and up again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from control_plane.app import open_database
from control_plane.db.migrate import alembic_config
from control_plane.db.models import Base
from control_plane.settings import ControlPlaneSettings
from tests.control_plane.running import make_settings

pytestmark = pytest.mark.asyncio

T = TypeVar("T")


def schema_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
def fresh_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> ControlPlaneSettings:
    """Settings for an empty database of the backend under test."""
    if backend == "sqlite":
        return make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    create_database = request.getfixturevalue("postgres_database_url")
    return make_settings(create_database())


async def run_on(
    settings: ControlPlaneSettings, work: Callable[[Connection], T], *, migrate: bool
) -> T:
    """Opens the database (migrating it first if asked) and runs `work` in a transaction."""
    async with (
        open_database(settings, migrate=migrate) as database,
        database.engine.begin() as connection,
    ):
        return await connection.run_sync(work)


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def downgrade_to_base(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def test_the_migrated_schema_is_the_models_schema(settings: ControlPlaneSettings) -> None:
    assert await run_on(settings, schema_drift, migrate=False) == []
    assert await run_on(settings, current_revision, migrate=False) == head_revision()


async def test_migrations_are_idempotent_and_reversible(
    fresh_settings: ControlPlaneSettings,
) -> None:
    assert set(Base.metadata.tables) <= await run_on(fresh_settings, table_names, migrate=True)
    # Already at head: migrating again changes nothing.
    assert await run_on(fresh_settings, current_revision, migrate=True) == head_revision()
    await run_on(fresh_settings, downgrade_to_base, migrate=False)
    assert await run_on(fresh_settings, table_names, migrate=False) <= {"alembic_version"}
    assert await run_on(fresh_settings, schema_drift, migrate=True) == []
