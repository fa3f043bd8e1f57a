"""The stream list runs on a direct reader, beside sessions: on both backends it returns
what a session returns, shows writes at once, and lists streams as they read one by one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from control_plane.db.direct_query import DirectQuery
from control_plane.db.direct_reader import EngineReader, open_direct_reader
from control_plane.db.engine import create_engine
from control_plane.db.migrate import upgrade_to_head
from control_plane.http.schemas import Page
from control_plane.streams.listing import tenant_page_statement
from control_plane.streams.models import Stream
from control_plane.streams.schemas import StreamPublic
from tests.control_plane.running import ControlPlane

pytestmark = pytest.mark.asyncio


async def varied_streams(control: ControlPlane, tenant: str) -> list[dict[str, Any]]:
    """Streams with every field away from its default somewhere, one of them live."""
    created = [
        await control.stream(tenant, name="plain"),
        await control.stream(
            tenant,
            name='Ünïcode "quoted" \\ name',
            recording=True,
            transcode_profile="720p",
            private_playback=True,
            enabled=False,
        ),
        await control.stream(tenant, name="live one"),
    ]
    async with control.database.session_factory() as session:
        await session.execute(
            update(Stream).where(Stream.id == created[2]["id"]).values(live_node_id="node-1")
        )
        await session.commit()
    return created


async def test_direct_reads_return_what_a_session_returns(control: ControlPlane) -> None:
    tenant = await control.tenant()
    await varied_streams(control, tenant)
    database = control.database
    statement = tenant_page_statement()
    values = {"tenant_id": tenant, "after": "", "limit": 10}
    query = DirectQuery.compile(statement, database.engine.dialect)
    async with database.session_factory() as session:
        expected = [tuple(row) for row in (await session.execute(statement, values)).all()]
    direct = [tuple(row) for row in await database.reader.fetch(query, values)]
    assert len(expected) == 3
    assert direct == expected
    through_engine = await EngineReader(database.engine).fetch(query, values)
    assert [tuple(row) for row in through_engine] == expected


async def test_listed_streams_are_the_streams_as_read_one_by_one(control: ControlPlane) -> None:
    tenant = await control.tenant()
    created = await varied_streams(control, tenant)
    url = f"/v1/tenants/{tenant}/streams"
    singles = [(await control.client.get(f"{url}/{s['id']}")).json() for s in created]
    assert [s["live"] for s in singles] == [False, False, True]

    listed = await control.client.get(url, params={"limit": 2})
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    by_id = sorted(singles, key=lambda s: s["id"])
    # Byte for byte what FastAPI would have made of the declared response model.
    expected = Page[StreamPublic](
        items=[StreamPublic.model_validate(s) for s in by_id[:2]], next_cursor=by_id[1]["id"]
    )
    assert listed.content == expected.model_dump_json().encode()
    rest = await control.client.get(url, params={"limit": 2, "cursor": by_id[1]["id"]})
    assert rest.json() == {"items": by_id[2:], "next_cursor": None}


async def test_the_list_shows_committed_writes_at_once(control: ControlPlane) -> None:
    tenant = await control.tenant()
    first = await control.stream(tenant, name="before")
    url = f"/v1/tenants/{tenant}/streams"
    assert [s["name"] for s in (await control.client.get(url)).json()["items"]] == ["before"]
    patched = await control.client.patch(f"{url}/{first['id']}", json={"name": "after"})
    assert patched.status_code == 200
    second = await control.stream(tenant, name="new")
    names = {s["name"] for s in (await control.client.get(url)).json()["items"]}
    assert names == {"after", "new"}
    assert (await control.client.delete(f"{url}/{second['id']}")).status_code == 204
    assert [s["name"] for s in (await control.client.get(url)).json()["items"]] == ["after"]


async def test_the_list_refuses_callers_outside_the_tenant(control: ControlPlane) -> None:
    tenant, other = await control.tenant(), await control.tenant()
    await control.stream(tenant)
    outsider = control.as_(await control.token(other, "read"))
    refused = await outsider.get(f"/v1/tenants/{tenant}/streams")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert (await control.as_(None).get(f"/v1/tenants/{tenant}/streams")).status_code == 401
    writer = control.as_(await control.token(tenant, "write"))
    assert (await writer.get(f"/v1/tenants/{tenant}/streams")).status_code == 403


async def test_sqlite_in_memory_reads_through_the_engine(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("a SQLite case")
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    try:
        await upgrade_to_head(engine)
        reader = await open_direct_reader(engine, max_connections=1)
        # A second connection to :memory: would be another, empty database.
        assert isinstance(reader, EngineReader)
        query = DirectQuery.compile(tenant_page_statement(), engine.dialect)
        assert await reader.fetch(query, {"tenant_id": "t", "after": "", "limit": 5}) == []
        await reader.close()
    finally:
        await engine.dispose()
