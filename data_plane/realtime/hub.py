"""The realtime hub: follows the bus and pushes each tenant's live updates to its
WebSocket subscribers.

Only tenants with subscribers are followed: a message of another tenant is skipped on its
`tenant_id` header, unparsed, which keeps the hub's cost proportional to what is watched.
When a tenant's first subscriber arrives, the hub seeds that tenant's state from the
warehouse (live streams, watching sessions), then follows its events.

Each subscriber has a bounded queue. A client that cannot keep up is dropped (it can
reconnect and gets a fresh snapshot) instead of letting its queue grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import BusError, BusMessage, ConsumerOptions, EventBus
from data_plane.realtime.live_state import LiveState, Update

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscriber:
    tenant_id: str
    #: None: every stream of the tenant.
    stream_ids: frozenset[str] | None
    queue: asyncio.Queue[dict[str, Any]]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, update: Update) -> bool:
        return update.tenant_id == self.tenant_id and (
            self.stream_ids is None or update.stream_id in self.stream_ids
        )


def _events_of(messages: list[BusMessage]) -> list[ev.Event]:
    """The events of fetched messages; what cannot be parsed is the ingest's to
    dead-letter, the hub just skips it."""
    events: list[ev.Event] = []
    for message in messages:
        try:
            events.extend(ev.EventBatch.FromString(message.value).events)
        except DecodeError:
            continue
    return events


@dataclass(frozen=True, slots=True)
class TenantSeed:
    #: Stream id -> ids of sessions watching it.
    sessions: dict[str, list[str]]
    #: Streams being published.
    live: set[str]


Seeder = Callable[[str], Awaitable[TenantSeed]]
TENANT_HEADER = "tenant_id"


class RealtimeHub:
    def __init__(
        self,
        bus: EventBus,
        topic: str,
        *,
        queue_size: int,
        idle_timeout_s: float,
        fetch_timeout_ms: int = 100,
        seed: Seeder | None = None,
    ) -> None:
        self._seed = seed
        #: Tenant id -> its subscribers.
        self._followed: dict[str, set[Subscriber]] = {}
        self._bus = bus
        self._topic = topic
        self._queue_size = queue_size
        self._fetch_timeout_ms = fetch_timeout_ms
        self._state = LiveState(idle_ms=int(idle_timeout_s * 1000))
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.dropped_slow = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-hub")
        await self.ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def subscribe(self, tenant_id: str, stream_ids: frozenset[str] | None) -> Subscriber:
        subscriber = Subscriber(tenant_id, stream_ids, asyncio.Queue(self._queue_size))
        followers = self._followed.get(tenant_id)
        if followers is None:
            # Followed from now on, so nothing falls between the seed and the bus.
            followers = self._followed[tenant_id] = set()
            followers.add(subscriber)
            if self._seed is not None:
                try:
                    seed = await self._seed(tenant_id)
                except Exception:
                    logger.exception("could not seed realtime state of tenant %s", tenant_id)
                else:
                    self._state.seed(tenant_id, seed.sessions, seed.live, time.time_ns() // 10**6)
        followers.add(subscriber)
        subscriber.queue.put_nowait(self._filtered_snapshot(subscriber))
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        followers = self._followed.get(subscriber.tenant_id)
        if followers is not None:
            followers.discard(subscriber)
            if not followers:
                del self._followed[subscriber.tenant_id]
                self._state.forget(subscriber.tenant_id)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _filtered_snapshot(self, subscriber: Subscriber) -> dict[str, Any]:
        snapshot = self._state.snapshot(subscriber.tenant_id)
        if subscriber.stream_ids is not None:
            snapshot["streams"] = {
                k: v for k, v in snapshot["streams"].items() if k in subscriber.stream_ids
            }
        return snapshot

    def publish(self, events: list[ev.Event], now_ms: int) -> None:
        self._fan_out(self._state.apply(events, now_ms))

    def _fan_out(self, updates: list[Update]) -> None:
        for update in updates:
            for subscriber in list(self._subscribers):
                if not subscriber.wants(update):
                    continue
                try:
                    subscriber.queue.put_nowait(update.message)
                except asyncio.QueueFull:
                    self.dropped_slow += 1
                    self.unsubscribe(subscriber)
                    subscriber.dropped.set()

    def _follows(self, message: BusMessage) -> bool:
        tenant = message.header(TENANT_HEADER)
        return tenant is not None and tenant.decode(errors="replace") in self._followed

    async def _run(self) -> None:
        consumer = await self._bus.consumer(
            [self._topic], ConsumerOptions(group_id=None, start="latest", max_records=5000)
        )
        self.ready.set()
        last_sweep = time.monotonic()
        try:
            while True:
                try:
                    messages = await consumer.fetch(timeout_ms=self._fetch_timeout_ms)
                except BusError as exc:
                    logger.warning("realtime hub cannot read the bus: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                now_ms = time.time_ns() // 1_000_000
                followed = [m for m in messages if self._follows(m)]
                if followed:
                    self.publish(_events_of(followed), now_ms)
                if time.monotonic() - last_sweep >= 1.0:
                    last_sweep = time.monotonic()
                    self._fan_out(self._state.expire(now_ms))
        finally:
            await consumer.close()
