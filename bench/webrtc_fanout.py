"""Fan-out: one RTMP-published 720p30 ~2.5 Mbit/s H.264 stream played by N WHEP viewers.

    .venv/bin/python bench/webrtc_fanout.py [--viewers 1 10 50 100] [--seconds 20]

The edge runs in its own process (bench/webrtc_edge_server.py); ffmpeg replays a
pre-encoded 720p30 H.264 + AAC file over RTMP with `-c copy`. The viewers are aiortc peer
connections in `--clients` load-generator processes that complete ICE and DTLS with
aiortc and then never decode, depacketize or even SRTP-unprotect: a counter on the UDP
socket (`count_datagrams`) counts RTP packets and video frames (marker bits of the
video payload types, readable in the clear SRTP header) and drops them; STUN consent
checks and RTCP still reach aiortc. After `--settle` seconds of publishing (the HLS
segment store then holds its steady amount), and for each N over a steady window once
every viewer has received media: the edge process's CPU (% of one core) and RSS against
the same window with the publisher and no viewers, the edge's event-loop lag (10 ms
sleeps, overshoot p99), and the fraction of the source's frames (30 fps) each viewer
received.
Target (issue 5): <= 1.0% of a core and <= 300 KB per viewer; >= 100 viewers with
>= 99% of frames and loop lag p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import stop_children_on_sigterm
from bench._webrtc import (
    EdgeProcess,
    count_datagrams,
    count_without_decoding,
    edge_process,
    loopback_peer,
    make_h264_source,
    rtmp_replay,
    video_payload_types,
)

KEY = "fanout"
FPS = 30


# -- load generator (a child process) ------------------------------------------------


async def client(base: str, viewers: int, warmup: float, seconds: float) -> None:
    from aiortc import RTCSessionDescription

    pcs = []
    types: list[set[int]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        try:
            for _ in range(viewers):
                pc = loopback_peer()
                pc.addTransceiver("video", direction="recvonly")
                pc.addTransceiver("audio", direction="recvonly")
                await pc.setLocalDescription(await pc.createOffer())
                response = await http.post(
                    f"/whep/{KEY}",
                    content=pc.localDescription.sdp,
                    headers={"Content-Type": "application/sdp"},
                )
                response.raise_for_status()
                types.append(video_payload_types(response.text))
                # Until the datagram counter below takes over, nothing reaches aiortc's
                # receivers (no jitter buffer, no decoder).
                count_without_decoding(pc, types[-1])
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=response.text, type="answer")
                )
                pcs.append(pc)
            async with asyncio.timeout(120):
                while any(pc.connectionState != "connected" for pc in pcs):
                    await asyncio.sleep(0.1)
            counters = [count_datagrams(pc, t) for pc, t in zip(pcs, types, strict=True)]
            async with asyncio.timeout(60):
                while any(c.frames == 0 for c in counters):
                    await asyncio.sleep(0.1)
            print("connected", flush=True)
            await asyncio.sleep(warmup)
            start = [c.frames for c in counters]
            began = time.monotonic()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - began
            frames = [c.frames - s for c, s in zip(counters, start, strict=True)]
            print(json.dumps({"frames": frames, "elapsed": elapsed}), flush=True)
        finally:
            await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


# -- driver ---------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def window(edge: EdgeProcess, seconds: float) -> tuple[float, int, dict[str, Any]]:
    """(% of one core, RSS bytes at the end, loop lag report) of the edge over `seconds`."""
    process = psutil.Process(edge.process.pid)
    edge.reset()
    before, began = cpu_seconds(process), time.monotonic()
    time.sleep(seconds)
    cpu = (cpu_seconds(process) - before) / (time.monotonic() - began) * 100
    return cpu, int(process.memory_info().rss), edge.report()


def start_clients(edge: EdgeProcess, viewers: int, clients: int, warmup: float, seconds: float):  # type: ignore[no-untyped-def]
    shares = [viewers // clients + (1 if i < viewers % clients else 0) for i in range(clients)]
    return [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                edge.webrtc_base,
                "--client-viewers",
                str(share),
                "--client-warmup",
                str(warmup),
                "--seconds",
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for share in shares
        if share
    ]


def measure(edge: EdgeProcess, viewers: int, args: argparse.Namespace) -> dict[str, Any]:
    warmup = 3.0
    # Client windows start after their own warm-up; the edge's window starts once every
    # client reported its viewers connected, plus the same warm-up.
    processes = start_clients(edge, viewers, min(args.clients, viewers), warmup, args.seconds)
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "connected":
                raise RuntimeError(f"client failed: {line!r}")
        time.sleep(warmup)
        cpu, rss, lag = window(edge, args.seconds - 1)
        client_cpu = sum(psutil.Process(p.pid).cpu_percent(0.5) for p in processes)
        frames: list[int] = []
        elapsed = args.seconds
        for process in processes:
            assert process.stdout is not None
            result = json.loads(process.stdout.readline())
            frames += result["frames"]
            elapsed = result["elapsed"]
    finally:
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(30)
            if process.poll() is None:
                process.kill()
                process.wait()
    fractions = [f / (FPS * elapsed) for f in frames]
    return {
        "viewers": viewers,
        "cpu_pct": cpu,
        "rss": rss,
        "lag": lag,
        "frames_min": min(fractions),
        "frames_median": sorted(fractions)[len(fractions) // 2],
        "client_cpu_pct": client_cpu,
    }


def print_memory(report: dict[str, Any], viewers: int) -> None:
    """The allocation sites that grew most since the previous window, per viewer."""
    for key in ("grown_by_filename", "grown_by_lineno"):
        print(f"    tracemalloc, {key.removeprefix('grown_by_')} (bytes and blocks per viewer):")
        for where, size, count in report.get(key, [])[:20]:
            print(f"      {size / viewers:9.0f} B {count / viewers:7.1f}  {where}")


def drive(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "source.flv"
        make_h264_source(source, seconds=30, size="1280x720", rate=FPS, bitrate="2500k")
        extra = ("--trace-memory",) if args.trace_memory else ()
        with edge_process(*extra) as edge, rtmp_replay(source, f"{edge.rtmp_base}/{KEY}"):
            time.sleep(args.settle)
            base_cpu, base_rss, base_lag = window(edge, args.seconds - 1)
            print(
                f"  publisher only: edge {base_cpu:.1f}% of a core, RSS "
                f"{base_rss / 2**20:.1f} MiB, loop lag p99 {base_lag['loop_lag_p99_ms']} ms",
                flush=True,
            )
            rows = []
            for n in args.viewers:
                row = measure(edge, n, args)
                row["cpu_per_viewer"] = (row["cpu_pct"] - base_cpu) / n
                row["kb_per_viewer"] = (row["rss"] - base_rss) / n / 1024
                rows.append(row)
                print(
                    f"  N={n}: edge {row['cpu_pct']:.1f}% ({row['cpu_per_viewer']:.2f}%/viewer), "
                    f"RSS {row['rss'] / 2**20:.1f} MiB ({row['kb_per_viewer']:.0f} KB/viewer), "
                    f"loop lag p99 {row['lag']['loop_lag_p99_ms']} ms, frames received "
                    f"min {row['frames_min']:.3f} median {row['frames_median']:.3f}, "
                    f"sessions on the edge {row['lag']['viewers']} "
                    f"(ended so far: {row['lag']['sessions_ended']}), "
                    f"encoders video {row['lag']['video_encoders']} audio "
                    f"{row['lag']['audio_transcoders']}, load generator "
                    f"{row['client_cpu_pct']:.0f}%",
                    flush=True,
                )
                if args.trace_memory:
                    print_memory(row["lag"], n)
                time.sleep(2.0)
    largest = rows[-1]
    print(
        json.dumps(
            {
                "metric": "whep_fanout_cpu_per_viewer",
                "value": round(largest["cpu_per_viewer"], 3),
                "unit": "% of a core",
                "ceiling": 1.0,
                "ceiling_basis": "target (issue 5)",
                "ratio": round(largest["cpu_per_viewer"] / 1.0, 2),
                "viewers": largest["viewers"],
                "kb_per_viewer": round(largest["kb_per_viewer"]),
                "loop_lag_p99_ms": largest["lag"]["loop_lag_p99_ms"],
                "frames_received_min": round(largest["frames_min"], 4),
                "rows": [
                    {
                        "viewers": r["viewers"],
                        "cpu_pct": round(r["cpu_pct"], 1),
                        "cpu_per_viewer": round(r["cpu_per_viewer"], 3),
                        "kb_per_viewer": round(r["kb_per_viewer"]),
                        "loop_lag_p99_ms": r["lag"]["loop_lag_p99_ms"],
                        "frames_min": round(r["frames_min"], 4),
                    }
                    for r in rows
                ],
            }
        )
    )


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="tracemalloc in the edge: where each viewer's memory goes (CPU figures invalid)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=40.0,
        help="seconds of publishing before the publisher-only window: the edge's HLS "
        "segment store fills for about 30 s (6 listed + 6 retained 2 s segments), and "
        "memory it gains after that window would be counted against the first viewers "
        "(4 s before 2026-12-04: about 3 MB of segments counted as the first viewer's)",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--client-viewers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-warmup", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client(args.client, args.client_viewers, args.client_warmup, args.seconds))
        return
    print(f"command: {' '.join(sys.argv)}")
    drive(args)


if __name__ == "__main__":
    main()
