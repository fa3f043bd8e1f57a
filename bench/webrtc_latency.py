"""WHIP publish -> WHEP play latency on loopback, against a direct aiortc peer pair.

    .venv/bin/python bench/webrtc_latency.py [--runs 3] [--seconds 15] [--codec H264]

The edge runs in its own process (bench/webrtc_edge_server.py). In this process an aiortc
publisher sends 320x240 frames at 30 fps, each carrying its index in a 4x4 board of
black/white blocks, over WHIP; an aiortc viewer plays over WHEP, decodes, reads the index
back and looks up when that frame left the publisher's track (same clock). Latency is
capture-to-decoded: the publisher's encode, packetization, the edge, the viewer's jitter
buffer and decode. The same measurement over a direct publisher -> viewer peer connection
(no edge) is the ceiling: what the edge adds is the difference. The first 2 s of each run
are left out (the GOP burst a joining viewer gets is late by design).
Target (issue 5): p50 <= 150 ms, p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
from aiortc import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import percentile, stop_children_on_sigterm
from bench._webrtc import (
    DecodedFrames,
    EdgeProcess,
    StampedVideo,
    decode_into,
    edge_process,
    exchange,
    loopback_peer,
    offer_host_addresses,
    owned_tasks,
    prefer,
)

WARMUP_S = 2.0


def latencies(source: StampedVideo, frames: DecodedFrames, since: float) -> list[float]:
    out = []
    for arrived, index in frames.arrivals:
        sent = source.sent.get(index)
        if sent is not None and sent >= since and arrived >= sent:
            out.append((arrived - sent) * 1000)
    return out


async def via_edge(edge: EdgeProcess, seconds: float, codec: str, key: str) -> list[float]:
    source = StampedVideo()
    publisher, viewer = loopback_peer(), loopback_peer()
    frames = DecodedFrames()
    async with (
        httpx.AsyncClient(base_url=edge.webrtc_base, timeout=10) as http,
        owned_tasks() as spawn,
    ):
        try:
            publisher.addTransceiver(source, direction="sendonly")
            prefer(publisher, "video", codec)
            await exchange(http, publisher, f"/whip/{key}")
            await asyncio.sleep(1.0)
            viewer.addTransceiver("video", direction="recvonly")

            @viewer.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                spawn(decode_into(track, frames, stamps=True))

            await exchange(http, viewer, f"/whep/{key}")
            await asyncio.wait_for(frames.first.wait(), 10)
            since = time.monotonic() + WARMUP_S
            await asyncio.sleep(WARMUP_S + seconds)
            return latencies(source, frames, since)
        finally:
            await viewer.close()
            await publisher.close()


async def direct(seconds: float, codec: str) -> list[float]:
    source = StampedVideo()
    publisher, viewer = loopback_peer(), loopback_peer()
    frames = DecodedFrames()
    async with owned_tasks() as spawn:
        try:
            publisher.addTransceiver(source, direction="sendonly")
            prefer(publisher, "video", codec)
            offer_host_addresses(publisher, ["127.0.0.1"])

            @viewer.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                spawn(decode_into(track, frames, stamps=True))

            await publisher.setLocalDescription(await publisher.createOffer())
            await viewer.setRemoteDescription(publisher.localDescription)
            offer_host_addresses(viewer, ["127.0.0.1"])
            await viewer.setLocalDescription(await viewer.createAnswer())
            await publisher.setRemoteDescription(viewer.localDescription)
            await asyncio.wait_for(frames.first.wait(), 10)
            since = time.monotonic() + WARMUP_S
            await asyncio.sleep(WARMUP_S + seconds)
            return latencies(source, frames, since)
        finally:
            await viewer.close()
            await publisher.close()


def summary(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 95)


async def run(args: argparse.Namespace) -> None:
    edge_runs: list[tuple[float, float, int]] = []
    direct_runs: list[tuple[float, float, int]] = []
    with edge_process() as edge:
        for index in range(args.runs):
            values = await via_edge(edge, args.seconds, args.codec, f"lat{index}")
            p50, p95 = summary(values)
            edge_runs.append((p50, p95, len(values)))
            base = await direct(args.seconds, args.codec)
            d50, d95 = summary(base)
            direct_runs.append((d50, d95, len(base)))
            print(
                f"  run {index + 1}: via edge p50 {p50:.1f} ms p95 {p95:.1f} ms "
                f"({len(values)} frames); direct p50 {d50:.1f} ms p95 {d95:.1f} ms "
                f"({len(base)} frames)",
                flush=True,
            )
    p50 = statistics.median(r[0] for r in edge_runs)
    p95 = statistics.median(r[1] for r in edge_runs)
    d50 = statistics.median(r[0] for r in direct_runs)
    d95 = statistics.median(r[1] for r in direct_runs)
    print(
        f"median of {args.runs} runs ({args.codec} 320x240@30): via edge p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms; direct p50 {d50:.1f} ms, p95 {d95:.1f} ms; added by the edge "
        f"p50 {p50 - d50:.1f} ms, p95 {p95 - d95:.1f} ms (target p50 <= 150, p95 <= 300)"
    )
    print(
        json.dumps(
            {
                "metric": "whip_whep_latency_p50",
                "value": round(p50, 1),
                "unit": "ms",
                "ceiling": round(d50, 1),
                "ceiling_basis": "direct aiortc peer pair, no edge, p50",
                "ratio": round(p50 / d50, 2) if d50 else None,
                "p95_ms": round(p95, 1),
                "direct_p95_ms": round(d95, 1),
                "added_p50_ms": round(p50 - d50, 1),
                "added_p95_ms": round(p95 - d95, 1),
                "target_p50_ms": 150,
                "target_p95_ms": 300,
            }
        )
    )


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--codec", default="H264", choices=["H264", "VP8"])
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
