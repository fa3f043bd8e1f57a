"""Decoding on worker processes gives what decoding in process gives, message indexes
included, and a worker that dies costs a retry, not the batch."""

from __future__ import annotations

import os
import signal

import pytest
from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import BusMessage
from data_plane.ingest.decoder_pool import DecoderPool
from data_plane.ingest.decoding import Decoded, decode
from data_plane.worker_processes import WorkerUnavailableError
from tests.data_plane.factory import viewer

pytestmark = pytest.mark.asyncio


def message(offset: int, value: bytes, tenant: str = "tenant-a") -> BusMessage:
    return BusMessage("t", 0, offset, b"k", value, (("tenant_id", tenant.encode()),))


def batch(offset: int) -> bytes:
    events = [viewer("viewer_progress", f"s{offset}-{i}", bytes_sent=i) for i in range(5)]
    return ev.EventBatch(events=events).SerializeToString()


def fetch(count: int, bad: set[int]) -> list[BusMessage]:
    return [
        message(offset, b"\xff garbage" if offset in bad else batch(offset))
        for offset in range(count)
    ]


def summary(decoded: Decoded) -> tuple[list[str], list[bytes | None]]:
    ids = sorted(decoded.rows.column("event_id").to_pylist())
    return ids, [dict(d.headers).get("source") for d in decoded.dead_letters]


@pytest.mark.parametrize("workers", [1, 2])
async def test_workers_decode_like_the_process_itself(workers: int) -> None:
    messages = fetch(150, bad={3, 70, 149})
    pool = DecoderPool(workers)
    try:
        await pool.start()
        assert len(pool.worker_pids()) == workers
        decoded = await pool.decode(messages)
    finally:
        await pool.close()
    expected = decode(messages)
    assert summary(decoded) == summary(expected)
    assert summary(decoded)[1] == [b"t/0/3", b"t/0/70", b"t/0/149"]
    assert decoded.rows.num_rows == 147 * 5
    assert pool.worker_pids() == []


async def test_a_dead_worker_is_replaced_and_the_batch_decodes_on_retry() -> None:
    messages = fetch(10, bad=set())
    pool = DecoderPool(1)
    try:
        await pool.start()
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerUnavailableError):
            await pool.decode(messages)
        decoded = await pool.decode(messages)
        assert decoded.rows.num_rows == 50
        assert pool.worker_pids() and pool.worker_pids() != [pid]
    finally:
        await pool.close()


async def test_no_workers_decodes_in_process() -> None:
    pool = DecoderPool(0)
    await pool.start()
    assert pool.worker_pids() == []
    assert (await pool.decode(fetch(3, bad={1}))).rows.num_rows == 10
    await pool.close()
