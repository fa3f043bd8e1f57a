import asyncpg
import pytest

from tests.harness.postgres import create_database


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_the_harness_server_answers_and_makes_databases(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(plain)
    try:
        assert await connection.fetchval("select 1") == 1
        assert (await connection.fetchval("show listen_addresses")) == "127.0.0.1"
    finally:
        await connection.close()
    other = create_database(postgres_url, "second_db")
    connection = await asyncpg.connect(other.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await connection.fetchval("select current_database()") == "second_db"
    finally:
        await connection.close()
