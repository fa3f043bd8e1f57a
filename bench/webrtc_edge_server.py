"""Runs the media engine with WHIP/WHEP (and RTMP, HLS) for the WebRTC benchmarks, with
hooks that allow every key (playback id = key), ICE on loopback. Serves until SIGTERM.

    python bench/webrtc_edge_server.py --rtmp-port P --http-port Q --webrtc-port R

Prints `ready <time>` once listening. An event-loop lag sampler runs beside the engine
(a 10 ms sleep, the overshoot recorded); SIGUSR1 starts a measurement window and SIGUSR2
prints one JSON line with the window's loop lag percentiles and WebRTC session counts.
With `--trace-memory` (tracemalloc on from the start: memory figures only, CPU figures are
not valid) each report also lists the allocation sites that grew most since the previous
report, by line and by file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

# This checkout's engine, not whichever one the environment has installed (editable
# installs of another work tree would otherwise win).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._allow_all import AllowAll
from bench._measure import percentile
from media_plane.edge_engine import (
    EngineSettings,
    MediaEngine,
)


class LoopLag:
    def __init__(self) -> None:
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.samples.append(max(0.0, loop.time() - before - 0.01))


async def main(args: argparse.Namespace) -> None:
    engine = MediaEngine(
        EngineSettings(
            rtmp_port=args.rtmp_port,
            http_port=args.http_port,
            webrtc_enabled=True,
            webrtc_port=args.webrtc_port,
            ice_host_addresses=("127.0.0.1",),
            webrtc_connect_timeout_s=30.0,
            health_interval_s=3600,
        ),
        AllowAll(),
    )
    lag = LoopLag()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    previous: list[tracemalloc.Snapshot] = []

    def memory() -> dict[str, Any]:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        result: dict[str, Any] = {"traced_bytes": tracemalloc.get_traced_memory()[0]}
        if previous:
            for key in ("lineno", "filename"):
                grown = snapshot.compare_to(previous[-1], key)[:25]
                result[f"grown_by_{key}"] = [
                    [str(stat.traceback[0]), stat.size_diff, stat.count_diff] for stat in grown
                ]
        previous[:] = [snapshot]
        return result

    def report() -> None:
        samples = lag.samples
        stats = engine.webrtc.stats() if engine.webrtc else None
        print(
            json.dumps(
                {
                    **(memory() if args.trace_memory else {}),
                    "loop_lag_p50_ms": round(percentile(samples, 50) * 1000, 2),
                    "loop_lag_p99_ms": round(percentile(samples, 99) * 1000, 2),
                    "loop_lag_max_ms": round(max(samples, default=0.0) * 1000, 2),
                    "viewers": stats.viewers if stats else 0,
                    "video_encoders": stats.video_encoders if stats else 0,
                    "audio_transcoders": stats.audio_transcoders if stats else 0,
                    "sessions_ended": stats.ended if stats else {},
                }
            ),
            flush=True,
        )

    loop.add_signal_handler(signal.SIGUSR1, lag.samples.clear)
    loop.add_signal_handler(signal.SIGUSR2, report)
    await engine.start()
    sampler = asyncio.create_task(lag.run())
    print(f"ready {time.time()}", flush=True)
    await stop.wait()
    sampler.cancel()
    await asyncio.gather(sampler, return_exceptions=True)
    await engine.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rtmp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--webrtc-port", type=int, required=True)
    parser.add_argument("--trace-memory", action="store_true")
    arguments = parser.parse_args()
    if arguments.trace_memory:
        tracemalloc.start(1)
    asyncio.run(main(arguments))
