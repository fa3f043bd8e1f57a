"""The realtime hub: follows the bus and pushes each tenant's live updates to its
WebSocket subscribers.

Only tenants with subscribers are followed: a message of another tenant is skipped on its
`tenant_id` header, unparsed, which keeps the hub's cost proportional to what is watched.
With no subscriber at all the hub does not read the bus: it starts reading (from the end)
when the first one arrives and stops a while after the last one left, so an API replica
nobody watches costs the brokers nothing. When a tenant's first subscriber arrives, the
hub seeds that tenant's state from the warehouse (live streams, watching sessions) once
the hub reads the bus, then follows its events.

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

from data_plane.bus.base import (
    TENANT_HEADER,
    BusConsumer,
    BusError,
    BusMessage,
    ConsumerOptions,
    EventBus,
)
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
#: How long a first subscriber waits for the hub to read the bus before it gets its
#: snapshot anyway.
READ_START_TIMEOUT_S = 5.0


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
        read_after_last_s: float = 30.0,
    ) -> None:
        """``read_after_last_s``: how long the hub keeps reading after its last subscriber
        left (a dashboard that reconnects finds it still reading)."""
        self._seed = seed
        #: Tenant id -> its subscribers.
        self._followed: dict[str, set[Subscriber]] = {}
        self._bus = bus
        self._topic = topic
        self._queue_size = queue_size
        self._fetch_timeout_ms = fetch_timeout_ms
        self._read_after_last_s = read_after_last_s
        self._state = LiveState(idle_ms=int(idle_timeout_s * 1000))
        self._subscribers: set[Subscriber] = set()
        #: The reader of the moment, and its event set once it reads from the bus's end.
        self._reader: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()
        #: Readers still closing their consumer after they stopped.
        self._readers: set[asyncio.Task[None]] = set()
        #: Subscribes under way (seeding), and when a subscriber last came or went.
        self._arriving = 0
        self._last_change = time.monotonic()
        self.dropped_slow = 0

    @property
    def reading(self) -> bool:
        """Whether the hub reads the bus now."""
        return self._reader is not None and self._reading.is_set()

    async def start(self) -> None:
        """Nothing to start until a subscriber arrives; kept so the owner's lifecycle
        reads the same as for every other part."""

    async def stop(self) -> None:
        readers = set(self._readers)
        self._reader = None
        for reader in readers:
            reader.cancel()
        for reader in readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_from_now(self) -> None:
        """Starts reading unless the hub reads already; returns once it reads from the
        bus's end, so that nothing falls between a seed and the bus (or after
        READ_START_TIMEOUT_S with the bus unreachable: the snapshot then comes alone, the
        updates once the bus is back)."""
        if self._reader is None or self._reader.done():
            self._reading = asyncio.Event()
            reader = asyncio.create_task(self._run(self._reading), name="realtime-hub")
            self._reader = reader
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
        try:
            await asyncio.wait_for(self._reading.wait(), READ_START_TIMEOUT_S)
        except TimeoutError:
            logger.warning("realtime hub: the bus cannot be read yet; updates will follow")

    async def subscribe(self, tenant_id: str, stream_ids: frozenset[str] | None) -> Subscriber:
        self._arriving += 1
        try:
            return await self._subscribe(tenant_id, stream_ids)
        finally:
            self._arriving -= 1
            self._last_change = time.monotonic()

    async def _subscribe(self, tenant_id: str, stream_ids: frozenset[str] | None) -> Subscriber:
        await self._read_from_now()
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
        self._last_change = time.monotonic()
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

    async def _run(self, reading: asyncio.Event) -> None:
        consumer = await self._consumer()
        reading.set()
        last_sweep = time.monotonic()
        try:
            while not self._idle():
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
            # Decided with no await since the check: a subscriber arriving from here on
            # starts a reader of its own.
            self._reader = None
        finally:
            await consumer.close()

    async def _consumer(self) -> BusConsumer:
        while True:
            try:
                return await self._bus.consumer(
                    [self._topic], ConsumerOptions(group_id=None, start="latest", max_records=5000)
                )
            except BusError as exc:
                logger.warning("realtime hub cannot start reading the bus: %s", exc)
                await asyncio.sleep(1.0)

    def _idle(self) -> bool:
        return (
            not self._subscribers
            and not self._arriving
            and time.monotonic() - self._last_change >= self._read_after_last_s
        )
