"""The engine's decoding of bus messages (chDB reading the protobuf itself) gives what the
Python decoding gives: the same rows, value for value, and the same problems; and its
writes store what the Python path stores, each event id once."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from google.protobuf.descriptor import FieldDescriptor
from tidecast.events.v1 import events_pb2 as ev

from data_plane.ingest.decoding import rows_of
from data_plane.warehouse import engine_decoding
from data_plane.warehouse.base import WarehouseError
from data_plane.warehouse.chdb_warehouse import ChdbWarehouse
from data_plane.warehouse.engine_decoding import BatchRefusedError
from data_plane.warehouse.event_sink import EventSink
from data_plane.warehouse.viewer_counts import ViewerCounts
from tests.data_plane.factory import node_health, now_ms, payload_kinds, viewer

AT = now_ms()


def every_kind(tenant: str, stream: str) -> list[ev.Event]:
    return payload_kinds(tenant, stream, AT)


def batch(events: list[ev.Event]) -> bytes:
    return ev.EventBatch(events=events).SerializeToString()


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("event_id", "ascending")])


@pytest.mark.asyncio
async def test_every_kind_decodes_to_the_rows_python_makes(chdb_warehouse: ChdbWarehouse) -> None:
    upper = viewer("viewer_progress", "w", tenant_id="t1", stream_id="s2")
    upper.event_id = upper.event_id.upper()
    payloads = [
        (batch(every_kind("t1", "s1")), "t1"),
        (batch([node_health(cpu_percent=12.5, streams=2, viewers=3, at_ms=AT)]), ""),
        (batch([upper, *every_kind("t1", "s2")]), "t1"),
    ]
    rows, problems = await chdb_warehouse.decode_batches(payloads)
    expected = rows_of(payloads)
    assert problems == expected.problems == []
    assert rows.schema == expected.rows.schema
    assert rows.num_rows == 16
    assert sorted_rows(rows).equals(sorted_rows(expected.rows))


@pytest.mark.asyncio
async def test_messages_with_problems_are_named_like_python_names_them(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    good = viewer("viewer_started", "v", tenant_id="t1")
    foreign = viewer("viewer_started", "v", tenant_id="t2")
    no_payload = viewer("viewer_started", "v", tenant_id="t1")
    no_payload.ClearField("viewer_started")
    short_id = viewer("viewer_started", "v", tenant_id="t1", event_id="abc")
    not_uuid = viewer("viewer_started", "v", tenant_id="t1", event_id="x" * 36)
    payloads = [
        (batch([good]), "t1"),
        (b"", "t1"),
        (batch([good, foreign]), "t1"),
        (batch([no_payload]), "t1"),
        (batch([short_id]), "t1"),
        (batch([not_uuid]), "t1"),
        (batch([viewer("viewer_ended", "v", tenant_id="t1")]), "t1"),
    ]
    rows, problems = await chdb_warehouse.decode_batches(payloads)
    expected = rows_of(payloads)
    assert [index for index, _ in problems] == [index for index, _ in expected.problems]
    assert problems[:4] == expected.problems[:4]
    assert problems[4][1].startswith("undecodable event")
    assert expected.problems[4][1].startswith("undecodable event")
    assert sorted_rows(rows).equals(sorted_rows(expected.rows))
    assert rows.num_rows == 2


@pytest.mark.asyncio
async def test_a_message_that_is_no_event_batch_is_refused_and_the_engine_stays_usable(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    with pytest.raises(WarehouseError):
        await chdb_warehouse.decode_batches([(b"\xff not protobuf", "t1")])
    assert (await chdb_warehouse.query("SELECT 41 + 1")).scalar() == 42
    rows, _ = await chdb_warehouse.decode_batches([(batch(every_kind("t1", "s1")), "t1")])
    assert rows.num_rows == 7


def test_the_engine_schema_has_every_field_of_the_contract() -> None:
    schema = engine_decoding.engine_schema()

    def fields(message: object) -> list[FieldDescriptor]:
        return list(message.fields)  # type: ignore[attr-defined]

    for field in fields(ev.Event.DESCRIPTOR):
        assert f" {field.name} = {field.number};" in schema
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for nested in fields(field.message_type):
                assert f" {nested.name} = {nested.number};" in schema
    # The framing fields must never collide with the contract's own.
    numbers = {field.number for field in ev.EventBatch.DESCRIPTOR.fields}
    assert not numbers & {engine_decoding.TENANT_FIELD, engine_decoding.INDEX_FIELD}


def retenant(events: list[ev.Event], tenant: str) -> list[ev.Event]:
    copies = [ev.Event.FromString(e.SerializeToString()) for e in events]
    for copy in copies:
        copy.tenant_id = tenant
        copy.event_id = uuid7_like(copy.event_id)
    return copies


def uuid7_like(event_id: str) -> str:
    """Another id of the same shape (the first 8 hex digits replaced)."""
    return f"{uuid.uuid4().hex[:8]}{event_id[8:]}"


async def stored(warehouse: ChdbWarehouse, tenant: str) -> list[dict[str, object]]:
    result = await warehouse.query(
        "SELECT * EXCEPT (event_id, tenant_id, ingested_at) FROM events FINAL "
        "WHERE tenant_id = {t:String} ORDER BY kind, occurred_at, session_id",
        {"t": tenant},
    )
    return result.dicts()


@pytest.mark.asyncio
async def test_the_engine_writes_what_the_python_path_writes_each_id_once(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    engine_tenant, python_tenant = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    events = every_kind(engine_tenant, "s1")
    upper = ev.Event.FromString(events[4].SerializeToString())
    upper.event_id = upper.event_id.upper()
    payloads = [
        (batch(events[:4]), engine_tenant),
        (batch([*events[4:], events[0]]), engine_tenant),  # an id twice in one batch
        (b"", engine_tenant),
        (batch([viewer("viewer_started", "v", tenant_id="other")]), engine_tenant),
    ]
    counts = ViewerCounts(chdb_warehouse)
    sink = EventSink(chdb_warehouse, counts)
    assert sink.writes_messages
    written = await sink.write_messages(payloads)
    assert (written.inserted, written.duplicates) == (7, 1)
    assert written.problems == [
        (2, "empty EventBatch"),
        (3, "event tenant differs from the tenant_id header"),
    ]
    assert written.viewer_span == (AT, AT)
    assert written.viewer_streams == {(engine_tenant, "s1")}

    again = await sink.write_messages([(batch([upper, *events]), engine_tenant)])
    assert (again.inserted, again.duplicates) == (0, 8)
    late = viewer("viewer_ended", "w", tenant_id=engine_tenant, stream_id="s1", at_ms=AT)
    mixed = await sink.write_messages([(batch([events[1], late, late]), engine_tenant)])
    assert (mixed.inserted, mixed.duplicates) == (1, 2)

    python_events = retenant([*events, late], python_tenant)
    assert (await EventSink(chdb_warehouse).write(python_events)).inserted == 8
    assert await stored(chdb_warehouse, engine_tenant) == await stored(
        chdb_warehouse, python_tenant
    )


@pytest.mark.asyncio
async def test_a_batch_the_engine_cannot_read_writes_nothing(chdb_warehouse: ChdbWarehouse) -> None:
    owner = f"t-{uuid.uuid4().hex[:8]}"
    sink = EventSink(chdb_warehouse)
    with pytest.raises(BatchRefusedError):
        await sink.write_messages(
            [(batch(every_kind(owner, "s1")), owner), (b"\xff not protobuf", owner)]
        )
    assert await stored(chdb_warehouse, owner) == []
    assert (await chdb_warehouse.query("SELECT 41 + 1")).scalar() == 42


def kinds_in(value: bytes) -> frozenset[str]:
    return frozenset(e.WhichOneof("payload") or "" for e in ev.EventBatch.FromString(value).events)


@pytest.mark.asyncio
async def test_messages_read_for_the_kinds_they_name_decode_to_the_rows_python_makes(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    # One message per kind and one of every kind: more kind sets than reads, so the
    # rarest are read together.
    payloads = [(batch([e]), "t1") for e in every_kind("t1", "s1")]
    payloads += [
        (batch(every_kind("t1", "s2")), "t1"),
        (batch([node_health(cpu_percent=12.5, streams=2, viewers=3, at_ms=AT)]), ""),
        (batch(every_kind("t1", "s3")[3:6]), "t1"),
    ]
    named = [kinds_in(value) for value, _ in payloads]
    assert len(set(named)) > engine_decoding.MAX_READS
    rows, problems = await chdb_warehouse.decode_batches(payloads, named)
    expected = rows_of(payloads)
    assert problems == expected.problems == []
    assert rows.num_rows == 18
    assert sorted_rows(rows).equals(sorted_rows(expected.rows))
    # Problems are found the same way in a read of some kinds.
    foreign = viewer("viewer_progress", "v", tenant_id="t2")
    problem_payloads = [(batch([foreign]), "t1"), (b"", "t1")]
    _, problems = await chdb_warehouse.decode_batches(
        problem_payloads, [frozenset({"viewer_progress"}), frozenset()]
    )
    assert problems == rows_of(problem_payloads).problems


@pytest.mark.asyncio
async def test_a_message_holding_a_kind_it_does_not_name_is_refused_whole(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    owner = f"t-{uuid.uuid4().hex[:8]}"
    events = every_kind(owner, "s1")
    sink = EventSink(chdb_warehouse)
    payloads = [(batch(events[:3]), owner), (batch(events[3:]), owner)]
    with pytest.raises(BatchRefusedError, match="does not name"):
        await sink.write_messages(payloads, [kinds_in(payloads[0][0]), frozenset({"viewer_ended"})])
    assert await stored(chdb_warehouse, owner) == []
    written = await sink.write_messages(payloads, [kinds_in(payloads[0][0]), None])
    assert written.inserted == 7


def test_reads_group_messages_by_kinds_and_are_bounded() -> None:
    vp, vs, ih = (
        frozenset({"viewer_progress"}),
        frozenset({"viewer_started"}),
        frozenset({"ingest_health"}),
    )
    assert engine_decoding.reads_of([vp, None, vp]) == [
        (vp, [0, 2]),
        (engine_decoding.KINDS, [1]),
    ]
    reads = engine_decoding.reads_of([vp, vs, vp, ih, frozenset({"node_health"}), vs, vp])
    assert reads == [
        (vp, [0, 2, 6]),
        (vs, [1, 5]),
        (ih | {"node_health"}, [3, 4]),
    ]
    assert len(reads) == engine_decoding.MAX_READS


def test_a_kinds_header_names_known_kinds_or_is_ignored() -> None:
    assert engine_decoding.read_kinds(b"viewer_progress,ingest_health") == frozenset(
        {"viewer_progress", "ingest_health"}
    )
    assert engine_decoding.read_kinds(b"") == frozenset()
    assert engine_decoding.read_kinds(None) is None
    assert engine_decoding.read_kinds(b"viewer_progress,hologram") is None
