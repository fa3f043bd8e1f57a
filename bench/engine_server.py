"""Runs the media engine alone (RTMP ingest + HLS packaging + HLS delivery) for benchmarks,
with hooks that allow every key (playback id = key). Serves until SIGTERM.

    python bench/engine_server.py --rtmp-port P --http-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

# This checkout's engine and the bench's own modules, whatever the environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._allow_all import AllowAll
from media_plane.edge_engine import (
    EngineSettings,
    MediaEngine,
)


async def main(args: argparse.Namespace) -> None:
    engine = MediaEngine(
        EngineSettings(rtmp_port=args.rtmp_port, http_port=args.http_port, health_interval_s=3600),
        AllowAll(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await engine.start()
    print(f"ready {time.time()}", flush=True)
    await stop.wait()
    await engine.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rtmp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
