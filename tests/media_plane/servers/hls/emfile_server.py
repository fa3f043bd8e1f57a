"""An HLS server process with a lowered descriptor limit (RLIMIT_NOFILE = argv[1]).

Prints its port on stdout, logs to stderr, runs until SIGTERM. Run by
test_hls_limits.py as a real process, so that the server, not the test, runs out of
descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import sys

from media_plane.media.hooks import PlayDecision
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.remux import SegmentStore
from media_plane.servers.hls import HlsHttpServer
from media_plane.servers.http import ConnectionLimits


class AllowAll:
    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        return PlayDecision(True)


async def main(descriptors: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, hard))
    server = HlsHttpServer(
        SegmentStore(),
        AllowAll(),
        "127.0.0.1",
        0,
        # The descriptors, not the head deadline, must be what frees the connections.
        limits=ConnectionLimits(
            header_timeout_s=120.0, idle_timeout_s=120.0, accept_backoff_max_s=0.2
        ),
    )
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sys.stdout.write(f"{server.port}\n")
    sys.stdout.flush()
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(int(sys.argv[1])))
