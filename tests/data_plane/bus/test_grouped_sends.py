"""Grouped sends (the Kafka producer's group commit), on a recording deliverer."""

from __future__ import annotations

import asyncio

import pytest

from data_plane.bus.grouped_sends import GroupedSends


class Recorder:
    """Delivers by recording the group; holds each delivery until released, when asked."""

    def __init__(self, *, hold: bool = False, fail_on: set[int] | None = None) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.started = asyncio.Event()
        self._fail_on = fail_on or set()

    async def deliver(self, items: list[int]) -> None:
        self.groups.append(items)
        self.started.set()
        await self.release.wait()
        if len(self.groups) in self._fail_on:
            raise ValueError(f"group {len(self.groups)} refused")


@pytest.mark.asyncio
async def test_a_lone_send_is_delivered_at_once_as_its_own_group() -> None:
    recorder = Recorder()
    sends = GroupedSends(recorder.deliver)

    await sends.send([1, 2, 3])

    assert recorder.groups == [[1, 2, 3]]
    assert sends.groups == 1


@pytest.mark.asyncio
async def test_sends_arriving_during_a_delivery_leave_together_in_arrival_order() -> None:
    recorder = Recorder(hold=True)
    sends = GroupedSends(recorder.deliver)
    first = asyncio.create_task(sends.send([1]))
    await recorder.started.wait()
    later = [asyncio.create_task(sends.send([n, n + 1])) for n in (10, 20, 30)]
    await asyncio.sleep(0)

    assert not first.done()
    recorder.release.set()
    await asyncio.gather(first, *later)

    assert recorder.groups == [[1], [10, 11, 20, 21, 30, 31]]


@pytest.mark.asyncio
async def test_a_send_returns_only_once_its_own_group_is_delivered() -> None:
    gates = {1: asyncio.Event(), 2: asyncio.Event()}
    delivering: list[list[int]] = []

    async def deliver(items: list[int]) -> None:
        delivering.append(items)
        await gates[len(delivering)].wait()

    sends = GroupedSends(deliver)
    first = asyncio.create_task(sends.send([1]))
    await asyncio.sleep(0)
    second = asyncio.create_task(sends.send([2]))
    await asyncio.sleep(0)
    gates[1].set()
    await first
    await asyncio.sleep(0)

    assert delivering == [[1], [2]]
    assert not second.done()
    gates[2].set()
    await second


@pytest.mark.asyncio
async def test_a_failed_group_fails_each_of_its_sends_and_the_next_group_still_goes() -> None:
    recorder = Recorder(hold=True, fail_on={2})
    sends = GroupedSends(recorder.deliver)
    first = asyncio.create_task(sends.send([1]))
    await recorder.started.wait()
    doomed = [asyncio.create_task(sends.send([n])) for n in (2, 3)]
    await asyncio.sleep(0)
    recorder.release.set()
    await first
    outcomes = await asyncio.gather(*doomed, return_exceptions=True)

    assert [type(o) for o in outcomes] == [ValueError, ValueError]
    assert outcomes[0] is not outcomes[1], "each caller gets its own exception"
    assert "group 2 refused" in str(outcomes[0])
    await sends.send([4])
    assert recorder.groups == [[1], [2, 3], [4]]


@pytest.mark.asyncio
async def test_a_cancelled_caller_does_not_stop_its_group() -> None:
    recorder = Recorder(hold=True)
    sends = GroupedSends(recorder.deliver)
    first = asyncio.create_task(sends.send([1]))
    await recorder.started.wait()
    impatient = asyncio.create_task(sends.send([2]))
    patient = asyncio.create_task(sends.send([3]))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()

    await asyncio.gather(first, patient)
    assert impatient.cancelled()
    # At least once: the cancelled caller's items left with their group all the same.
    assert recorder.groups == [[1], [2, 3]]


@pytest.mark.asyncio
async def test_close_fails_the_group_on_its_way_and_the_waiting_sends() -> None:
    recorder = Recorder(hold=True)
    sends = GroupedSends(recorder.deliver, closed=lambda: ConnectionError("bus closed"))
    on_its_way = asyncio.create_task(sends.send([1]))
    await recorder.started.wait()
    waiting = asyncio.create_task(sends.send([2]))
    await asyncio.sleep(0)

    await sends.close()

    for task in (on_its_way, waiting):
        with pytest.raises(ConnectionError, match="bus closed"):
            await task
    assert recorder.groups == [[1]]
