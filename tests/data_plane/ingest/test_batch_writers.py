"""Both writers of the ingest store the same rows: the engine's, whose SQL is generated
from warehouse/event_columns.py, and Python's, whose Arrow readers are generated from the
same table. Each kind's events go through both real paths into the session's chDB
warehouse, and the stored rows are compared column by column."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry
from tidecast.common.v1 import common_pb2
from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import KINDS_HEADER, TENANT_HEADER, BusMessage, kinds_header
from data_plane.bus.memory import InProcessBus
from data_plane.ingest.batch_writer import BatchWriter
from data_plane.ingest.dead_letters import DeadLetters
from data_plane.ingest.decoder_pool import DecoderPool
from data_plane.ingest.engine_writer import EngineBatchWriter
from data_plane.ingest.metrics import IngestMetrics
from data_plane.ingest.python_writer import PythonBatchWriter
from data_plane.warehouse.chdb_warehouse import ChdbWarehouse
from data_plane.warehouse.event_columns import COLUMNS, PAYLOADS
from data_plane.warehouse.event_sink import EventSink
from tests.data_plane.factory import event, now_ms, payload_kinds

AT = now_ms()


def of_kind(kind: str, tenant: str) -> list[ev.Event]:
    """Events of `kind`: every field set, and one with an empty payload (zero values)."""
    if kind == "node_health":
        full = event(
            kind,
            tenant_id=tenant,
            at_ms=AT,
            cpu_percent=12.5,
            memory_used_bytes=2**40,
            bandwidth_in_bps=3_000_000,
            bandwidth_out_bps=9_000_000,
            streams=2,
            viewers=3,
        )
    else:
        [full] = [e for e in payload_kinds(tenant, "s1", AT) if e.WhichOneof("payload") == kind]
    unknown = event(kind, tenant_id=tenant, at_ms=AT + 1)
    if kind in ("viewer_started", "stream_started"):
        getattr(unknown, kind).protocol = common_pb2.MEDIA_PROTOCOL_WHEP
    return [full, unknown]


def copies(events: list[ev.Event], tenant: str) -> list[ev.Event]:
    """The events for another tenant, their ids differing in the first 8 hex digits only
    (the dedup index holds ids across tenants)."""
    out = [ev.Event.FromString(e.SerializeToString()) for e in events]
    for copy in out:
        copy.tenant_id = tenant
        copy.event_id = f"{uuid.uuid4().hex[:8]}{copy.event_id[8:]}"
    return out


def message(events: list[ev.Event], tenant: str, offset: int) -> BusMessage:
    kinds = {e.WhichOneof("payload") or "" for e in events}
    return BusMessage(
        topic="events",
        partition=0,
        offset=offset,
        key=b"s1",
        value=ev.EventBatch(events=events).SerializeToString(),
        headers=((TENANT_HEADER, tenant.encode()), kinds_header(kinds)),
    )


async def stored(warehouse: ChdbWarehouse, tenant: str) -> list[dict[str, object]]:
    """Every column but the tenant, the id without its first 8 hex digits."""
    others = ", ".join(f"`{name}`" for name in COLUMNS if name not in ("event_id", "tenant_id"))
    result = await warehouse.query(
        f"SELECT substring(toString(event_id), 9) AS id_tail, {others} FROM events FINAL "  # noqa: S608
        "WHERE tenant_id = {t:String} ORDER BY id_tail",
        {"t": tenant},
    )
    return result.dicts()


async def write(writer: BatchWriter, messages: list[BusMessage]) -> None:
    await writer.start()
    try:
        written = await writer.write([writer.fetched(messages)])
    finally:
        await writer.close()
    assert written.inserted == sum(len(ev.EventBatch.FromString(m.value).events) for m in messages)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
async def test_both_writers_store_the_same_rows_for_each_payload_kind(
    chdb_warehouse: ChdbWarehouse, kind: str
) -> None:
    engine_tenant, python_tenant = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    events = of_kind(kind, engine_tenant)
    bus = InProcessBus()
    await bus.start()
    try:
        dead = DeadLetters(bus.producer(), "dead", IngestMetrics(CollectorRegistry()))
        sink = EventSink(chdb_warehouse)
        engine = EngineBatchWriter(sink, dead)
        await write(engine, [message(events, engine_tenant, 0)])
        python = PythonBatchWriter(sink, dead, DecoderPool(0))
        await write(python, [message(copies(events, python_tenant), python_tenant, 0)])
    finally:
        await bus.close()
    rows = await stored(chdb_warehouse, engine_tenant)
    assert len(rows) == len(events)
    assert {row["kind"] for row in rows} == {kind}
    assert rows == await stored(chdb_warehouse, python_tenant)


@pytest.mark.asyncio
async def test_a_message_read_for_every_kind_stores_what_python_stores(
    chdb_warehouse: ChdbWarehouse,
) -> None:
    """Without a kinds header the engine reads every kind's fields."""
    engine_tenant, python_tenant = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    events = [e for kind in sorted(PAYLOADS) for e in of_kind(kind, engine_tenant)]
    unnamed = message(events, engine_tenant, 0)
    headerless = BusMessage(
        topic=unnamed.topic,
        partition=0,
        offset=0,
        key=unnamed.key,
        value=unnamed.value,
        headers=tuple(h for h in unnamed.headers if h[0] != KINDS_HEADER),
    )
    bus = InProcessBus()
    await bus.start()
    try:
        dead = DeadLetters(bus.producer(), "dead", IngestMetrics(CollectorRegistry()))
        sink = EventSink(chdb_warehouse)
        await write(EngineBatchWriter(sink, dead), [headerless])
        python = PythonBatchWriter(sink, dead, DecoderPool(0))
        await write(python, [message(copies(events, python_tenant), python_tenant, 0)])
    finally:
        await bus.close()
    rows = await stored(chdb_warehouse, engine_tenant)
    assert len(rows) == len(events)
    assert rows == await stored(chdb_warehouse, python_tenant)
