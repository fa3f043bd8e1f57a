"""The PostgreSQL harness: a real server on loopback, fresh databases on demand, and a
clear skip or failure when PostgreSQL is not installed."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.harness import postgres
from tests.harness.postgres import CreateDatabase


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_the_session_server_answers_on_loopback_only(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+asyncpg://tidecast@127.0.0.1:")
    connection = await asyncpg.connect(_dsn(postgres_url))
    try:
        assert await connection.fetchval("select 1") == 1
        assert await connection.fetchval("show listen_addresses") == "127.0.0.1"
        assert await connection.fetchval("show fsync") == "off"
    finally:
        await connection.close()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_each_created_database_is_fresh_and_separate(
    postgres_database_url: CreateDatabase,
) -> None:
    first, second = postgres_database_url(), postgres_database_url("second_db")
    assert second.endswith("/second_db") and first != second
    connection = await asyncpg.connect(_dsn(first))
    try:
        await connection.execute("create table only_here (id int)")
    finally:
        await connection.close()
    connection = await asyncpg.connect(_dsn(second))
    try:
        assert await connection.fetchval("select current_database()") == "second_db"
        assert await connection.fetchval("select to_regclass('only_here')") is None
    finally:
        await connection.close()


def test_the_newest_installed_major_version_wins(tmp_path: Path) -> None:
    for major in ("9", "15", "10"):
        for tool in ("pg_ctl", "initdb"):
            (tmp_path / major / "bin").mkdir(parents=True, exist_ok=True)
            (tmp_path / major / "bin" / tool).touch()
    (tmp_path / "16" / "bin").mkdir(parents=True)  # client-only install: no server
    assert postgres.postgres_bin_dir(tmp_path) == tmp_path / "15" / "bin"


def test_missing_binaries_skip_unless_postgres_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "postgres_bin_dir", lambda: None)
    monkeypatch.delenv(postgres.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        postgres.require_binaries()
    monkeypatch.setenv(postgres.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=postgres.REQUIRE_ENV):
        postgres.require_binaries()


def test_database_names_are_plain_identifiers() -> None:
    with pytest.raises(ValueError, match="identifier"):
        postgres.create_database("postgresql+asyncpg://u@127.0.0.1:5432/db", 'x"; drop')
