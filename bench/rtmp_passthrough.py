"""Passthrough cost: N concurrent 720p30 ~3 Mbit/s RTMP publishers into one edge, beside
FFmpeg's own remux and nginx-rtmp doing the same job in the same run.

    .venv/bin/python bench/rtmp_passthrough.py [--streams 1 10 30] [--seconds 20]

A 720p30 H.264 + AAC source at ~3 Mbit/s is encoded once; every publisher replays it with
`ffmpeg -re -stream_loop -1 -c copy` so publishers cost little. For each N and each server
(our engine; `ffmpeg -listen 1 -i rtmp://... -c copy -f hls` per stream; nginx with
Debian's libnginx-mod-rtmp, `hls on`, one worker) it measures the server processes' CPU
(% of one core) and RSS over a steady-state window, and for our engine checks every
playlist for media-sequence gaps and segment durations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import free_port, stop_children_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def make_source(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=sample_rate=48000",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "60",
            "-b:v",
            "2800k",
            "-maxrate",
            "3000k",
            "-bufsize",
            "6000k",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
    )


def publishers(source: Path, urls: list[str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-nostdin",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                str(source),
                "-c",
                "copy",
                "-f",
                "flv",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for url in urls
    ]


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(pids: list[int], seconds: float) -> tuple[float, float]:
    """(CPU in % of one core, RSS in MB) summed over the processes for a window."""
    procs = [psutil.Process(pid) for pid in pids]
    before = [p.cpu_times() for p in procs]
    started = time.monotonic()
    rss_samples = []
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        rss_samples.append(sum(p.memory_info().rss for p in procs))
    elapsed = time.monotonic() - started
    after = [p.cpu_times() for p in procs]
    cpu = sum((a.user + a.system) - (b.user + b.system) for a, b in zip(after, before, strict=True))
    return 100.0 * cpu / elapsed, statistics.median(rss_samples) / 1e6


@contextlib.contextmanager
def engine_server() -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    rtmp, http = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "engine_server.py"),
            "--rtmp-port",
            str(rtmp),
            "--http-port",
            str(http),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ready")
        yield process, rtmp, http
    finally:
        process.terminate()
        process.wait(20)


def playlist_gaps(http_port: int, keys: list[str]) -> tuple[int, float]:
    """Counts media-sequence gaps across two polls per stream; returns (gaps, max EXTINF)."""
    gaps, longest = 0, 0.0
    seen: dict[str, int] = {}
    with httpx.Client(timeout=5) as client:
        for _ in range(2):
            for key in keys:
                text = client.get(f"http://127.0.0.1:{http_port}/hls/{key}/index.m3u8").text
                sequence = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
                count = len(re.findall(r"^#EXTINF", text, re.MULTILINE))
                longest = max([longest, *map(float, re.findall(r"#EXTINF:([\d.]+)", text))])
                last = sequence + count
                if key in seen and sequence > seen[key]:
                    gaps += 1  # segments slid out between polls that we never saw listed
                seen[key] = last
            time.sleep(4.0)
    return gaps, longest


def run_ours(source: Path, n: int, seconds: float) -> dict[str, float]:
    with engine_server() as (process, rtmp, http):
        _, idle_rss = measure([process.pid], 3)
        keys = [f"s{i}" for i in range(n)]
        pubs = publishers(source, [f"rtmp://127.0.0.1:{rtmp}/live/{k}" for k in keys])
        try:
            time.sleep(6)
            cpu, rss = measure([process.pid], seconds)
            gaps, longest = playlist_gaps(http, keys)
            alive = sum(p.poll() is None for p in pubs)
        finally:
            stop_all(pubs)
    return {
        "cpu": cpu,
        "rss": rss,
        "idle_rss": idle_rss,
        "gaps": gaps,
        "longest_segment": longest,
        "publishers_alive": alive,
    }


def run_ffmpeg(source: Path, n: int, seconds: float, work: Path) -> dict[str, float]:
    ports = [free_port() for _ in range(n)]
    servers = []
    for i, port in enumerate(ports):
        out = work / f"ff{i}"
        out.mkdir(parents=True, exist_ok=True)
        servers.append(
            subprocess.Popen(
                [
                    "ffmpeg",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-nostdin",
                    "-listen",
                    "1",
                    "-i",
                    f"rtmp://127.0.0.1:{port}/live/k",
                    "-c",
                    "copy",
                    "-f",
                    "hls",
                    "-hls_time",
                    "2",
                    "-hls_list_size",
                    "6",
                    "-hls_flags",
                    "delete_segments",
                    str(out / "index.m3u8"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1.0)
    pubs = publishers(source, [f"rtmp://127.0.0.1:{port}/live/k" for port in ports])
    try:
        time.sleep(6)
        cpu, rss = measure([s.pid for s in servers], seconds)
    finally:
        stop_all(pubs)
        stop_all(servers)
    return {"cpu": cpu, "rss": rss}


def run_nginx(source: Path, n: int, seconds: float, work: Path) -> dict[str, float] | None:
    if not (Path(NGINX).exists() and Path(RTMP_MODULE).exists()):
        return None
    port = free_port()
    root = work / "nginx"
    (root / "hls").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(f"""
load_module {RTMP_MODULE};
daemon off;
master_process on;
worker_processes 1;
error_log {root}/logs/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            hls on;
            hls_path {root}/hls;
            hls_fragment 2s;
            hls_playlist_length 12s;
        }}
    }}
}}
""")
    server = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    pubs = publishers(source, [f"rtmp://127.0.0.1:{port}/live/k{i}" for i in range(n)])
    try:
        time.sleep(6)
        workers = [c.pid for c in psutil.Process(server.pid).children()]
        cpu, rss = measure([server.pid, *workers], seconds)
    finally:
        stop_all(pubs)
        stop_all([server])
    return {"cpu": cpu, "rss": rss}


def main() -> None:
    stop_children_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("needs ffmpeg")
    print(f"command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "source.flv"
        make_source(source, 20)
        bitrate = source.stat().st_size * 8 / 20 / 1e6
        print(f"source: 1280x720 30 fps H.264 + AAC, {bitrate:.2f} Mbit/s")
        results = []
        for n in args.streams:
            ours = run_ours(source, n, args.seconds)
            ffmpeg = run_ffmpeg(source, n, args.seconds, work)
            nginx = run_nginx(source, n, args.seconds, work)
            row = {
                "streams": n,
                "ours_cpu_per_stream": ours["cpu"] / n,
                "ours_rss_per_stream_mb": (ours["rss"] - ours["idle_rss"]) / n,
                "ours_gaps": ours["gaps"],
                "ours_longest_segment_s": ours["longest_segment"],
                "ours_publishers_alive": ours["publishers_alive"],
                "ffmpeg_cpu_per_stream": ffmpeg["cpu"] / n,
                "ffmpeg_rss_per_stream_mb": ffmpeg["rss"] / n,
                "nginx_cpu_per_stream": nginx["cpu"] / n if nginx else None,
                "nginx_rss_per_stream_mb": nginx["rss"] / n if nginx else None,
            }
            results.append(row)
            print(
                f"N={n}: ours {row['ours_cpu_per_stream']:.2f}% CPU and "
                f"{row['ours_rss_per_stream_mb']:.1f} MB per stream "
                f"(gaps {ours['gaps']}, longest segment {ours['longest_segment']:.2f} s, "
                f"{ours['publishers_alive']}/{n} publishers alive); "
                f"ffmpeg remux {row['ffmpeg_cpu_per_stream']:.2f}% and "
                f"{row['ffmpeg_rss_per_stream_mb']:.1f} MB; nginx-rtmp "
                + (
                    f"{row['nginx_cpu_per_stream']:.2f}% and "
                    f"{row['nginx_rss_per_stream_mb']:.2f} MB"
                    if nginx
                    else "n/a"
                ),
                flush=True,
            )
        last = results[-1]
        print(
            json.dumps(
                {
                    "metric": f"rtmp_passthrough_cpu_per_stream_n{last['streams']}",
                    "value": round(last["ours_cpu_per_stream"], 3),
                    "unit": "% of a core",
                    "peer": "ffmpeg -c copy -f hls",
                    "peer_value": round(last["ffmpeg_cpu_per_stream"], 3),
                    "ratio": round(last["ours_cpu_per_stream"] / last["ffmpeg_cpu_per_stream"], 3),
                    "nginx_value": (
                        round(last["nginx_cpu_per_stream"], 3)
                        if last["nginx_cpu_per_stream"] is not None
                        else None
                    ),
                    "rss_per_stream_mb": round(last["ours_rss_per_stream_mb"], 2),
                    "segment_gaps": last["ours_gaps"],
                }
            )
        )


if __name__ == "__main__":
    main()
