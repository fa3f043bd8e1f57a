"""`tidecast edge run`: one edge node in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from edge_sidecar.settings import EdgeSidecarSettings
from edge_sidecar.supervisor import EdgeSidecar


async def run_edge(settings: EdgeSidecarSettings, announce: Callable[[str], None]) -> None:
    sidecar = EdgeSidecar(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Inside the try: a start that fails half way (a port in use) stops what started.
        await sidecar.start()
        announce(f"edge node {sidecar.node.node_id if sidecar.node else '?'} is ready")
        announce(f"RTMP ingest   {sidecar.rtmp_url}/<stream key>")
        announce(f"HLS playback  {sidecar.http_url}/hls/<playback id>/index.m3u8")
        announce(f"health        http://{settings.bind_host}:{sidecar.admin_port}/healthz")
        await stop.wait()
    finally:
        announce("stopping...")
        await sidecar.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
