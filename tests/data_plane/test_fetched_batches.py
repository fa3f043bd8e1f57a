"""The ingest's buffer between its reader and its writer: bounded by messages, not fetches."""

from __future__ import annotations

import asyncio

import pytest

from data_plane.ingest.fetched_batches import FetchedBatches

pytestmark = pytest.mark.asyncio


async def test_the_reader_waits_only_once_a_writes_worth_of_messages_is_waiting() -> None:
    batches: FetchedBatches[int, str] = FetchedBatches(budget=5)
    # Many small fetches fit (a bound on fetches would have stopped the reader here).
    for i in range(4):
        await asyncio.wait_for(batches.put([i], f"fetch{i}"), 1)
    # A fetch is never split: this one takes the batches past the budget.
    await asyncio.wait_for(batches.put([4, 5, 6], "fetch4"), 1)
    assert batches.full and batches.messages == 7
    blocked = asyncio.create_task(batches.put([7], "fetch5"))
    await asyncio.sleep(0.05)
    assert not blocked.done()

    taken = await batches.take()
    assert [extra for _, extra in taken] == ["fetch0", "fetch1", "fetch2", "fetch3", "fetch4"]
    assert [m for messages, _ in taken for m in messages] == list(range(7))
    await asyncio.wait_for(blocked, 1)
    assert [extra for _, extra in await batches.take()] == ["fetch5"]


async def test_the_writer_waits_for_a_batch_or_for_a_writes_worth() -> None:
    batches: FetchedBatches[int, None] = FetchedBatches(budget=3)
    assert await batches.wait(0.05) is False
    await batches.put([1], None)
    assert await batches.wait(0.05) is True
    # One message waiting is a batch, not a write's worth.
    assert await batches.wait(0.05, until_full=True) is False

    async def fill() -> None:
        await asyncio.sleep(0.05)
        await batches.put([2, 3], None)

    filler = asyncio.create_task(fill())
    assert await batches.wait(5, until_full=True) is True
    await filler
    assert batches.messages == 3


async def test_a_budget_below_one_message_is_refused() -> None:
    with pytest.raises(ValueError):
        FetchedBatches(budget=0)
