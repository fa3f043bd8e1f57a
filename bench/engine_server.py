"""Runs the media engine alone (RTMP ingest + HLS packaging + HLS delivery) for benchmarks,
with hooks that allow every key (playback id = key). Serves until SIGTERM.

    python bench/engine_server.py --rtmp-port P --http-port Q
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from media_plane.edge_engine import (
    EngineEvent,
    EngineSettings,
    MediaEngine,
    PlayDecision,
    PublishDecision,
    PublishGrant,
)


class AllowAll:
    async def authorize_publish(self, key: str, protocol: str, client_addr: str) -> PublishDecision:
        return PublishDecision.allow(PublishGrant(stream_id=key, playback_id=key))

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str
    ) -> PlayDecision:
        return PlayDecision(allowed=True)

    def emit(self, event: EngineEvent) -> None:
        pass


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
