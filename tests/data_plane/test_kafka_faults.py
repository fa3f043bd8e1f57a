"""The Kafka path under faults: a real tansu broker, the ingress in this process, the
ingest consumer as its own process writing to ClickHouse over HTTP (the harness's
stand-in in front of chDB), and simulated edges shipping their spools with the real
shipper. After each fault the warehouse holds every produced event exactly once: the raw
row count, the distinct ids and the rollup sums all equal what the edges produced."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from data_plane.serve import Role, running_data_plane
from data_plane.warehouse.base import Warehouse
from data_plane.warehouse.clickhouse_warehouse import ClickHouseWarehouse
from edge_sidecar.ingress_client import IngressClient
from edge_sidecar.shipper import EventShipper, ShipperMetrics
from edge_sidecar.spool import EventSpool, RecordClass
from tests.control_plane.running import ControlPlane, Node
from tests.data_plane.conftest import data_settings
from tests.data_plane.factory import viewer
from tests.harness.kafka import TansuBroker

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

EDGES = 3
PARTITIONS = 3
#: What an ingest consumer logs after its first write under each new assignment.
HOLDS = re.compile(r"ingest has written and holds partitions \[([0-9,]*)\]")
#: Events each simulated edge produces per second.
RATE = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Edge:
    node: Node
    spool: EventSpool
    client: IngressClient
    shipper: EventShipper


@dataclass
class KafkaStack:
    control: ControlPlane
    broker: TansuBroker
    clickhouse_url: str
    tenant: str
    stream: str
    topic: str
    group: str
    ingress_port: int
    tmp: Path
    warehouse: Warehouse
    edges: list[Edge] = field(default_factory=list)
    produced: int = 0
    consumers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Every consumer started, in order (`consumers` are those not killed yet).
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def settings(self, **overrides: object) -> object:
        return data_settings(
            self.control,
            bus="kafka",
            kafka_bootstrap=self.broker.bootstrap,
            warehouse="clickhouse",
            clickhouse_url=self.clickhouse_url,
            events_topic=self.topic,
            dead_letter_topic=f"{self.topic}-dlq",
            events_partitions=PARTITIONS,
            ingest_group=self.group,
            ingress_port=self.ingress_port,
            control_timeout_s=5,
            **overrides,
        )

    def start_consumer(self) -> None:
        env = {
            **os.environ,
            "DATA_PLANE_BUS": "kafka",
            "DATA_PLANE_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "DATA_PLANE_WAREHOUSE": "clickhouse",
            "DATA_PLANE_CLICKHOUSE_URL": self.clickhouse_url,
            "DATA_PLANE_EVENTS_TOPIC": self.topic,
            "DATA_PLANE_DEAD_LETTER_TOPIC": f"{self.topic}-dlq",
            "DATA_PLANE_EVENTS_PARTITIONS": str(PARTITIONS),
            "DATA_PLANE_INGEST_GROUP": self.group,
            "DATA_PLANE_INGEST_MAX_WAIT_MS": "100",
        }
        log = open(self.log_of(len(self.started)), "ab")  # noqa: SIM115 - owned by the process
        consumer = subprocess.Popen(
            [sys.executable, "-m", "tidecast_cli.main", "data", "serve", "--role", "ingest"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.consumers.append(consumer)
        self.started.append(consumer)

    def log_of(self, started: int) -> Path:
        """The log of the `started`-th consumer started (from 0)."""
        return self.tmp / f"consumer-{started}.log"

    def logs(self) -> str:
        return "".join(
            f"--- consumer {n}:\n{self.log_of(n).read_text()[-2000:]}"
            for n in range(len(self.started))
        )

    def held_partitions(self, consumer: subprocess.Popen[bytes]) -> frozenset[int]:
        """The partitions `consumer` last said it holds after a write (none before its
        first write)."""
        text = self.log_of(self.started.index(consumer)).read_text()
        found = HOLDS.findall(text)
        return frozenset(int(p) for p in found[-1].split(",") if p) if found else frozenset()

    def kill_consumer(self, index: int = 0) -> None:
        """kill -9 of one ingest process (the oldest by default), which must be running."""
        consumer = self.consumers.pop(index)
        assert consumer.poll() is None, f"the consumer to kill had exited: {self.logs()}"
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)

    def kill_all(self) -> None:
        for consumer in self.consumers:
            if consumer.poll() is None:
                consumer.send_signal(signal.SIGKILL)
                consumer.wait(10)
        self.consumers.clear()

    def produce(self, count: int) -> None:
        """Spools `count` events spread over the edges, each carrying 1 byte of egress."""
        for i in range(count):
            edge = self.edges[i % len(self.edges)]
            event = viewer(
                "viewer_progress",
                f"{edge.node.id}-{self.produced % 50}",
                tenant_id=self.tenant,
                stream_id=self.stream,
                node_id=edge.node.id,
                bytes_sent=1,
                watched_ms=1,
            )
            edge.spool.append(event.SerializeToString(), RecordClass.KEEP)
            self.produced += 1

    async def counts(self) -> tuple[int, int, int]:
        """(raw rows, distinct event ids, rollup byte sum) of this test's tenant."""
        raw = await self.warehouse.query(
            "SELECT count(), uniqExact(event_id) FROM events WHERE tenant_id = {t:String}",
            {"t": self.tenant},
        )
        rollup = await self.warehouse.query(
            "SELECT sum(bytes) FROM viewers_by_stream_minute WHERE tenant_id = {t:String}",
            {"t": self.tenant},
        )
        rows, distinct = raw.rows[0]
        return int(rows), int(distinct), int(rollup.scalar() or 0)

    async def settle(self, timeout_s: float = 90.0) -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            counts = await self.counts()
            pending = sum(e.spool.pending() for e in self.edges)
            if counts[1] >= self.produced and pending == 0:
                await asyncio.sleep(1.0)  # anything doubled would land now
                return await self.counts()
            if loop.time() > deadline:
                raise AssertionError(
                    f"stored {counts} of {self.produced} produced; {pending} still spooled; "
                    f"consumer logs: {self.logs()}"
                )
            await asyncio.sleep(0.25)


async def keep_producing(stack: KafkaStack, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        await produce_a_tick(stack)


async def produce_a_tick(stack: KafkaStack) -> None:
    stack.produce(EDGES * RATE // 10)
    for edge in stack.edges:
        edge.shipper.wake()
    await asyncio.sleep(0.1)


async def produce_until(
    stack: KafkaStack, predicate: Callable[[], bool], timeout_s: float, what: str
) -> None:
    """Keeps producing at the edges' rate until `predicate` holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {stack.logs()}")
        await produce_a_tick(stack)


@contextlib.asynccontextmanager
async def ingress(stack: KafkaStack) -> AsyncIterator[None]:
    async with running_data_plane(stack.settings(), [Role.INGRESS]):  # type: ignore[arg-type]
        yield


@pytest_asyncio.fixture
async def kafka_stack(
    control: ControlPlane, private_tansu: TansuBroker, clickhouse_http_url: str, tmp_path: Path
) -> AsyncIterator[KafkaStack]:
    tenant = await control.tenant()
    stream = str((await control.stream(tenant))["id"])
    warehouse = ClickHouseWarehouse(clickhouse_http_url)
    suffix = uuid.uuid4().hex[:8]
    stack = KafkaStack(
        control=control,
        broker=private_tansu,
        clickhouse_url=clickhouse_http_url,
        tenant=tenant,
        stream=stream,
        topic=f"analytics-{suffix}",
        group=f"ingest-{suffix}",
        ingress_port=free_port(),
        tmp=tmp_path,
        warehouse=warehouse,
    )
    for index in range(EDGES):
        node = await control.enroll()
        spool = EventSpool(tmp_path / f"edge{index}")
        client = IngressClient(
            f"127.0.0.1:{stack.ingress_port}", timeout_s=5, max_message_bytes=4 << 20
        )
        client.set_credential(node.credential)
        shipper = EventShipper(
            spool, client, ShipperMetrics(CollectorRegistry()), max_backoff_s=2.0
        )
        stack.edges.append(Edge(node, spool, client, shipper))
    try:
        yield stack
    finally:
        stack.kill_all()
        for edge in stack.edges:
            await edge.shipper.stop()
            await edge.client.close()
            edge.spool.close()
        await warehouse.close()


def start_shipping(stack: KafkaStack) -> None:
    for edge in stack.edges:
        edge.shipper.start()


def assert_exactly_once(stack: KafkaStack, counts: tuple[int, int, int]) -> None:
    assert counts == (stack.produced, stack.produced, stack.produced), (
        f"(rows, distinct ids, rollup bytes) = {counts}, produced {stack.produced}"
    )


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_kill_9_of_an_ingest_consumer_loses_and_doubles_nothing(
    kafka_stack: KafkaStack,
) -> None:
    """Two consumers share the partitions; one is killed mid-run (its written but
    uncommitted batches are replayed by the other after the rebalance), then restarted
    (another rebalance)."""
    stack = kafka_stack
    async with ingress(stack):
        stack.start_consumer()
        stack.start_consumer()
        start_shipping(stack)

        def split(consumer: subprocess.Popen[bytes]) -> bool:
            """It has written since the group split the partitions (a lone member
            holds them all)."""
            return 0 < len(stack.held_partitions(consumer)) < PARTITIONS

        # The stream's events go to one partition: the victim is the member holding it.
        await produce_until(
            stack, lambda: any(map(split, stack.consumers)), 60, "a consumer to write its share"
        )
        [victim] = [consumer for consumer in stack.consumers if split(consumer)]
        stack.kill_consumer(stack.consumers.index(victim))
        [survivor] = stack.consumers
        await produce_until(
            stack,
            lambda: len(stack.held_partitions(survivor)) == PARTITIONS,
            60,
            "the survivor to take every partition and write",
        )
        stack.start_consumer()
        await produce_until(
            stack,
            lambda: any(map(split, stack.consumers)),
            60,
            "a write after the restarted consumer joined",
        )
        await keep_producing(stack, 2)
        assert_exactly_once(stack, await stack.settle())


async def test_an_ingress_outage_of_a_minute_is_absorbed_by_the_edge_spools(
    kafka_stack: KafkaStack,
) -> None:
    stack = kafka_stack
    stack.start_consumer()
    start_shipping(stack)
    async with ingress(stack):
        await keep_producing(stack, 2)
    await keep_producing(stack, 60)  # the ingress is down; edges keep producing
    assert sum(e.spool.pending() for e in stack.edges) > 0
    async with ingress(stack):
        await keep_producing(stack, 2)
        assert_exactly_once(stack, await stack.settle())


async def test_a_frozen_broker_delays_but_loses_and_doubles_nothing(
    kafka_stack: KafkaStack,
) -> None:
    stack = kafka_stack
    async with ingress(stack):
        stack.start_consumer()
        start_shipping(stack)
        await keep_producing(stack, 3)
        stack.broker.pause()
        produced_before = stack.produced
        try:
            await keep_producing(stack, 30)
            # Nothing produced during the freeze reached the warehouse during it.
            _, stored, _ = await stack.counts()
        finally:
            stack.broker.resume()
        assert stored <= produced_before < stack.produced, (
            f"{stored} stored during a freeze that began after {produced_before} "
            f"of {stack.produced} were produced"
        )
        await keep_producing(stack, 3)
        assert_exactly_once(stack, await stack.settle(timeout_s=120))
