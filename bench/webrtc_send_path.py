"""The WHEP send path alone: N viewers of one 720p30 ~2.5 Mbit/s H.264 stream, one process.

    .venv/bin/python bench/webrtc_send_path.py [--viewers 0 10 50 100] [--seconds 10]

Less noise-sensitive than bench/webrtc_fanout.py: no ffmpeg, no RTMP, no HTTP, no audio
transcode, no second process. The edge's `WebRtcSessions` and `StreamFanout` run as in the
engine; a feeder pushes a pre-encoded 720p30 H.264 file's packets into the stream at 30 fps
(times `--speed`); the viewers are aiortc peer connections in the same process that
complete ICE and DTLS and then stop reading their socket (`--receive drop`, the default:
the kernel drops the datagrams, so the CPU the process spends is the edge's) or count
datagrams and marker bits without SRTP or RTP handling (`--receive count`, for frames
received). For each N: CPU of the process (% of one core), RTP packets sent per second
(the senders' own counts, as RTCP sender reports carry them), the
marginal CPU per packet against N=0 (in microseconds) and the packets one core would send
at that cost, and the event-loop lag p99 (10 ms sleeps, overshoot).

Runs the `media_plane` of the checkout it is in (not an installed one), so copying it
into another work tree measures that tree's code with the same harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._allow_all import AllowAll
from bench._measure import median, percentile, stop_children_on_sigterm
from bench._webrtc import DatagramCount, count_datagrams, loopback_peer, make_h264_source
from media_plane.edge_engine import (
    PublishGrant,
)
from media_plane.media import Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.media.live_stream import StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.servers.webrtc import WebRtcOptions, WebRtcSessions

FPS = 30
KEY = "sendpath"


def read_source(path: Path) -> tuple[bytes, list[tuple[bytes, bool]]]:
    """(avcC, [(AVCC access unit, keyframe)]) of the file's video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        units = [(bytes(p), bool(p.is_keyframe)) for p in container.demux(stream) if p.size]
    return extradata, units


async def feed(stream: Any, units: list[tuple[bytes, bool]], speed: float) -> None:
    """Push the units at FPS * speed, forever, with 90 kHz timestamps that keep rising."""
    began = time.monotonic()
    index = 0
    while True:
        data, keyframe = units[index % len(units)]
        pts = index * 90_000 // FPS
        stream.push(MediaPacket(TrackKind.VIDEO, pts, pts, data, keyframe))
        index += 1
        delay = began + index / (FPS * speed) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def lag_sampler(samples: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        samples.append(max(0.0, loop.time() - before - 0.01))


async def connect_viewers(
    sessions: WebRtcSessions, n: int, drop: bool
) -> tuple[list[Any], list[DatagramCount]]:
    from aiortc import RTCSessionDescription

    async def one() -> Any:
        pc = loopback_peer()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await sessions.play(KEY, None, pc.localDescription.sdp.encode(), "127.0.0.1")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        return pc

    pcs: list[Any] = []
    # Ten at a time: ICE gathering and DTLS handshakes are slow one by one.
    for start in range(0, n, 10):
        pcs += await asyncio.gather(*(one() for _ in range(min(10, n - start))))
    async with asyncio.timeout(180):
        while any(pc.connectionState != "connected" for pc in pcs):
            await asyncio.sleep(0.05)
    if drop:
        # The viewers stop reading: the kernel drops what reaches their full socket
        # buffers, so the process's CPU is the edge's alone (the sender's syscall is the
        # same whether the datagram is queued or dropped). Consent checks go unanswered,
        # which ends the sessions only after about 30 s.
        for pc in pcs:
            dtls = pc.getTransceivers()[0].receiver.transport
            dtls.transport._connection._nominated[1].protocol.transport.pause_reading()
        return pcs, []
    return pcs, [count_datagrams(pc) for pc in pcs]


async def packets_sent(sessions: WebRtcSessions) -> int:
    """RTP packets the edge's senders report (what RTCP sender reports carry)."""
    total = 0
    for session in list(sessions._sessions.values()):
        for sender in session.pc.getSenders():
            stats = await sender.getStats()
            total += sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")
    return total


async def measure(
    n: int, units: list[tuple[bytes, bool]], extradata: bytes, args: argparse.Namespace
) -> dict[str, Any]:
    registry = StreamRegistry()
    sessions = WebRtcSessions(
        registry, AllowAll(), WebRtcOptions(host_addresses=("127.0.0.1",), connect_timeout_s=60)
    )
    await sessions.start()
    stream = registry.start(PublishGrant(KEY, KEY), MediaProtocol.RTMP, "127.0.0.1")
    stream.set_tracks(VideoTrack(Codec.H264, extradata, 1280, 720), None)
    samples: list[float] = []
    tasks = [
        asyncio.create_task(feed(stream, units, args.speed)),
        asyncio.create_task(lag_sampler(samples)),
    ]
    pcs: list[Any] = []
    try:
        pcs, counts = await connect_viewers(sessions, n, args.receive == "drop")
        await asyncio.sleep(args.warmup)
        samples.clear()
        frames = [c.frames for c in counts]
        sent = await packets_sent(sessions)
        cpu, began = time.process_time(), time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - began
        cpu_pct = (time.process_time() - cpu) / elapsed * 100
        sent = await packets_sent(sessions) - sent
        got = [c.frames - f for c, f in zip(counts, frames, strict=True)]
        return {
            "viewers": n,
            "cpu_pct": cpu_pct,
            "packets_per_s": sent / elapsed,
            "lag_p99_ms": percentile(samples, 99) * 1000,
            "frames_min": min(got) / (FPS * args.speed * elapsed) if got else 1.0,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        registry.finish(stream)
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
        await sessions.stop()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "source.flv"
        make_h264_source(source, seconds=10, size="1280x720", rate=FPS, bitrate="2500k")
        extradata, units = read_source(source)
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in args.viewers}
    for attempt in range(args.runs):
        for n in args.viewers:
            row = await measure(n, units, extradata, args)
            rows[n].append(row)
            print(
                f"  run {attempt + 1} N={n}: process {row['cpu_pct']:.1f}% of a core, "
                f"{row['packets_per_s']:.0f} RTP packets/s, loop lag p99 "
                f"{row['lag_p99_ms']:.1f} ms, frames min {row['frames_min']:.3f}",
                flush=True,
            )
    base = median([r["cpu_pct"] for r in rows[0]]) if 0 in rows else 0.0
    summary = []
    for n in args.viewers:
        cpu = median([r["cpu_pct"] for r in rows[n]])
        pps = median([r["packets_per_s"] for r in rows[n]])
        us = (cpu - base) / 100 / pps * 1e6 if n and pps else float("nan")
        item = {
            "viewers": n,
            "cpu_pct": round(cpu, 1),
            "packets_per_s": round(pps),
            "us_per_packet": round(us, 1),
            "packets_per_core_s": round(1e6 / us) if n and us > 0 else None,
            "cpu_per_viewer_pct": round((cpu - base) / n, 3) if n else None,
            "lag_p99_ms": round(median([r["lag_p99_ms"] for r in rows[n]]), 1),
            "frames_min": round(min(r["frames_min"] for r in rows[n]), 3),
        }
        summary.append(item)
        print(f"  median N={n}: {item}", flush=True)
    largest = summary[-1]
    print(
        json.dumps(
            {
                "metric": "whep_send_us_per_packet",
                "value": largest["us_per_packet"],
                "unit": "us of CPU per RTP packet",
                "viewers": largest["viewers"],
                "rows": summary,
            }
        )
    )


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[0, 10, 50, 100])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--speed", type=float, default=1.0, help="times real time")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--receive",
        choices=["drop", "count"],
        default="drop",
        help="drop: viewers stop reading after connecting (CPU is the edge's alone); "
        "count: they count datagrams and marker bits (frames received)",
    )
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
