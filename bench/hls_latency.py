"""HLS packaging latency on one edge: first playlist and per-frame packager latency.

    .venv/bin/python bench/hls_latency.py [--runs 3] [--seconds 20] [--segment 2.0]

The engine runs in this process (RTMP ingest + PyAV packaging + segment store); ffmpeg
publishes 720p30 H.264 + AAC with a 2 s GOP in real time. A reader attached to the live
stream records when each video frame arrives; the playlist is polled every 5 ms. Reported:

* first playlist: from the first keyframe's arrival to the first playlist listing a
  segment (target: segment duration + 0.5 s);
* packager latency: for every frame, from its arrival to the moment the segment holding
  it is listed (p50/p95; target p95 <= segment duration + 0.3 s). Frames arrive over
  loopback as ffmpeg sends them, so arrival stands in for "sent".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import sys
import time
from pathlib import Path

from media_plane.edge_engine import (
    EngineSettings,
    MediaEngine,
)
from media_plane.media import AudioTrack, MediaPacket, TrackKind, VideoTrack
from media_plane.media.live_stream import LiveStream

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._allow_all import AllowAll
from bench._measure import free_port, percentile


class Arrivals:
    def __init__(self) -> None:
        self.frames: list[tuple[int, float]] = []  # (dts, arrival)
        self.first_keyframe: tuple[int, float] | None = None

    def on_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        pass

    def on_packet(self, packet: MediaPacket) -> None:
        if packet.kind is not TrackKind.VIDEO:
            return
        now = time.monotonic()
        if self.first_keyframe is None:
            if not packet.keyframe:
                return
            self.first_keyframe = (packet.dts, now)
        self.frames.append((packet.dts, now))

    def on_end(self) -> None:
        pass


async def one_run(seconds: float, segment: float) -> dict[str, float]:
    engine = MediaEngine(
        EngineSettings(
            rtmp_port=free_port(),
            http_port=free_port(),
            health_interval_s=3600,
        ),
        AllowAll(segment),
    )
    arrivals = Arrivals()

    def attach(stream: LiveStream) -> None:
        stream.attach(arrivals)

    engine.registry.on_start(attach)
    await engine.start()
    key = "latency"
    publisher = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-g",
        "60",
        "-b:v",
        "2500k",
        "-c:a",
        "aac",
        "-f",
        "flv",
        f"rtmp://127.0.0.1:{engine.rtmp_port}/live/{key}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    listed_at: dict[int, float] = {}  # media sequence -> when first listed
    durations: dict[int, float] = {}
    try:
        while publisher.returncode is None:
            playlist = engine.hls.store.playlist(key)
            if playlist is not None:
                now = time.monotonic()
                text = playlist.decode()
                first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
                for offset, duration in enumerate(re.findall(r"#EXTINF:([\d.]+)", text)):
                    listed_at.setdefault(first + offset, now)
                    durations.setdefault(first + offset, float(duration))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(publisher.wait(), 0.005)
    finally:
        if publisher.returncode is None:
            publisher.kill()
            await publisher.wait()
        await engine.stop()
    assert arrivals.first_keyframe is not None and listed_at, "nothing was packaged"
    first_listing = min(listed_at.values()) - arrivals.first_keyframe[1]
    # Map each frame to its segment by the cumulative segment durations.
    start_dts = arrivals.first_keyframe[0]
    bounds, edge = [], 0.0
    for sequence in sorted(durations):
        edge += durations[sequence]
        bounds.append((edge, sequence))
    pace = min(arrival - dts / 90_000 for dts, arrival in arrivals.frames)
    latencies, from_send = [], []
    for dts, arrival in arrivals.frames:
        position = (dts - start_dts) / 90_000
        sequence = next((seq for end, seq in bounds if position < end - 1e-6), None)
        if sequence is not None and sequence in listed_at:
            latencies.append(listed_at[sequence] - arrival)
            from_send.append(listed_at[sequence] - (pace + dts / 90_000))
    return {
        "first_playlist_s": first_listing,
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "sent_p50_s": percentile(from_send, 50),
        "sent_p95_s": percentile(from_send, 95),
        "frames": float(len(latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--segment", type=float, default=2.0)
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}")
    runs = []
    for index in range(args.runs):
        result = asyncio.run(one_run(args.seconds, args.segment))
        runs.append(result)
        print(
            f"  run {index + 1}: first playlist {result['first_playlist_s']:.3f} s, "
            f"packager latency p50 {result['p50_s']:.3f} s p95 {result['p95_s']:.3f} s, "
            f"from the paced send p50 {result['sent_p50_s']:.3f} s "
            f"p95 {result['sent_p95_s']:.3f} s, over {int(result['frames'])} frames",
            flush=True,
        )
    first = statistics.median(r["first_playlist_s"] for r in runs)
    p50 = statistics.median(r["p50_s"] for r in runs)
    p95 = statistics.median(r["p95_s"] for r in runs)
    sent_p50 = statistics.median(r["sent_p50_s"] for r in runs)
    sent_p95 = statistics.median(r["sent_p95_s"] for r in runs)
    print(
        f"median of {args.runs} runs: first playlist {first:.3f} s "
        f"(target {args.segment + 0.5:.1f} s), packager p50 {p50:.3f} s, p95 {p95:.3f} s; "
        f"from the paced send p50 {sent_p50:.3f} s, p95 {sent_p95:.3f} s "
        f"(target {args.segment + 0.3:.1f} s)"
    )
    print(
        json.dumps(
            {
                "metric": "hls_packager_latency_p95",
                "value": round(sent_p95, 3),
                "unit": "s",
                "p50": round(sent_p50, 3),
                "from_arrival_p95": round(p95, 3),
                "from_arrival_p50": round(p50, 3),
                "first_playlist_s": round(first, 3),
                "target_s": args.segment + 0.3,
            }
        )
    )


if __name__ == "__main__":
    main()
