"""What record batches cost a Kafka-protocol broker: tansu's CPU while messages shaped like
the ingress's (20 stream keys, ~7 KB values of 50 events) are produced at a fixed rate and
one consumer group reads them, with one record batch per 1,000-event call (how the ingress
produced before grouping its sends) against groups of four calls (what 20 ms of linger
makes of its calls at 100,000 events/s).

    .venv/bin/python bench/kafka_record_batches.py [--seconds 60] [--rate 100000]

tansu keeps its log in memory, and a fetch there costs more the more batches the log
holds, so the figure to watch is how its CPU grows over the run. Each case gets a broker
of its own. Last line: {"metric", "value", "unit", "baseline", "ratio"}: tansu's CPU over
the last 10 s with grouped sends, and with one batch per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import stop_children_on_sigterm
from data_plane.bus.base import ConsumerOptions, OutgoingMessage, TopicPartition
from data_plane.bus.kafka import KafkaBus
from tests.harness.kafka import running_tansu

EVENTS_PER_CALL = 1000
KEYS = 20


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def consume(bus: KafkaBus, stop: asyncio.Event) -> None:
    consumer = await bus.consumer(["events"], ConsumerOptions(group_id="ingest"))
    try:
        while not stop.is_set():
            messages = await consumer.fetch(timeout_ms=100)
            if messages:
                await consumer.commit(
                    {TopicPartition(m.topic, m.partition): m.offset + 1 for m in messages}
                )
    finally:
        await consumer.close()


async def run_case(
    bootstrap: str, broker_pid: int, calls_per_send: int, rate: float, seconds: float
) -> list[float]:
    """tansu's CPU (% of a core) per 10 s while producing."""
    bus = KafkaBus(bootstrap)
    await bus.start()
    await bus.ensure_topic("events", 6)
    stop = asyncio.Event()
    reader = asyncio.create_task(consume(bus, stop))
    await asyncio.sleep(8)  # the group's first rebalance
    value = os.urandom(EVENTS_PER_CALL // KEYS * 140)
    messages = [
        OutgoingMessage(key=f"stream-{i}".encode(), value=value, headers=(("tenant_id", b"t"),))
        for i in range(KEYS)
    ] * calls_per_send
    producer = bus.producer()
    interval = EVENTS_PER_CALL * calls_per_send / rate
    cpu: list[float] = []
    started = time.perf_counter()
    mark, mark_cpu = started, cpu_seconds(broker_pid)
    sends = 0
    while time.perf_counter() - started < seconds:
        due = started + sends * interval
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        await producer.send_batch("events", messages)
        sends += 1
        now = time.perf_counter()
        if now - mark >= 10:
            used = cpu_seconds(broker_pid)
            cpu.append((used - mark_cpu) / (now - mark) * 100)
            mark, mark_cpu = now, used
    stop.set()
    await reader
    await bus.close()
    return cpu


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100_000.0)
    args = parser.parse_args()
    command = "python bench/kafka_record_batches.py " + " ".join(sys.argv[1:])
    results = {}
    for name, calls in (("one batch per call", 1), ("grouped, 4 calls per batch", 4)):
        with running_tansu() as broker:
            results[name] = asyncio.run(
                run_case(broker.bootstrap, broker.pid, calls, args.rate, args.seconds)
            )
        print(f"{name:28s} tansu CPU per 10 s: " + ", ".join(f"{c:.0f}%" for c in results[name]))
    ungrouped, grouped = (
        results["one batch per call"][-1],
        results["grouped, 4 calls per batch"][-1],
    )
    print(f"command: {command}")
    print(
        json.dumps(
            {
                "metric": "tansu_cpu_last_10s_percent",
                "value": round(grouped, 1),
                "unit": "% of a core",
                "baseline": round(ungrouped, 1),
                "ratio": round(grouped / ungrouped, 3) if ungrouped else None,
                "rate": args.rate,
            }
        )
    )


if __name__ == "__main__":
    main()
