"""HLS delivery throughput: the engine's HTTP server against nginx, same bytes, same load.

Serves one 750 KB segment and a live playlist from `HlsHttpServer` (in this process) and
the same bytes as static files from nginx (`daemon off; worker_processes 1;`, sendfile,
open file cache, no access log), both on 127.0.0.1, and drives each with `wrk` (50
keep-alive connections, 2 threads) for segments and for playlists. Reports the median of
the runs and ends with one JSON line for the segment figure (the playlist figure is the
JSON line before it).

    .venv/bin/python bench/hls_delivery.py [--runs 3] [--duration 5] [--connections 50]

Needs `wrk` (apt-get install -y wrk) and /usr/sbin/nginx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from media_plane.media.hooks import PlayDecision
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.remux import SegmentStore
from media_plane.servers.hls import HlsHttpServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._measure import free_port

NGINX = "/usr/sbin/nginx"
PLAYBACK_ID = "bench"
SEGMENT_SIZE = 750 * 1024


class AllowAll:
    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        return PlayDecision(True)


@dataclass
class Result:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    number, unit = float(match[1]), match[2]
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def _parse_wrk(output: str) -> Result:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx[1])
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Result(float(rps[1]), _to_ms(p50[1]), _to_ms(p99[1]), errors)


async def _wrk(url: str, args: argparse.Namespace) -> tuple[Result, list[str]]:
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        url,
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {stdout.decode()}")
    return _parse_wrk(stdout.decode()), command


def _nginx_conf(root: Path, prefix: Path, port: int) -> str:
    return f"""
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 10000000;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.m3u8$ {{
            add_header Cache-Control "max-age=1";
            add_header Access-Control-Allow-Origin "*";
        }}
        location ~ \\.ts$ {{
            add_header Cache-Control "public, max-age=86400, immutable";
            add_header Access-Control-Allow-Origin "*";
        }}
    }}
}}
"""


async def _wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


def _median(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.requests_per_s for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def _line(name: str, result: Result) -> str:
    return (
        f"{name:<22} {result.requests_per_s:>10.0f} req/s   p50 {result.p50_ms:7.2f} ms   "
        f"p99 {result.p99_ms:7.2f} ms   errors {result.errors}"
    )


async def main(args: argparse.Namespace) -> int:
    store = SegmentStore(window=6)
    segment = os.urandom(SEGMENT_SIZE)
    names = [
        store.add_segment(PLAYBACK_ID, segment, duration=2.0, program_date_time=time.time() + i)
        for i in range(6)
    ]
    playlist = store.playlist(PLAYBACK_ID)
    assert playlist is not None
    server = HlsHttpServer(store, AllowAll(), "127.0.0.1", 0)
    await server.start()

    with tempfile.TemporaryDirectory(prefix="hls-bench-") as temp:
        prefix = Path(temp)
        root = prefix / "www"
        stream_dir = root / "hls" / PLAYBACK_ID
        stream_dir.mkdir(parents=True)
        (stream_dir / "index.m3u8").write_bytes(playlist)
        (stream_dir / names[0]).write_bytes(segment)
        # nginx workers drop root and must be able to read the files.
        for directory in (prefix, root, root / "hls", stream_dir):
            directory.chmod(0o755)
        nginx_port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(_nginx_conf(root, prefix, nginx_port))
        nginx_command = [NGINX, "-c", str(conf), "-p", str(prefix)]
        nginx = await asyncio.create_subprocess_exec(
            *nginx_command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            await _wait_for_port(nginx_port)
            targets = {
                "python": f"http://127.0.0.1:{server.port}/hls/{PLAYBACK_ID}",
                "nginx": f"http://127.0.0.1:{nginx_port}/hls/{PLAYBACK_ID}",
            }
            paths = {"segment": f"/{names[0]}", "playlist": "/index.m3u8"}
            results: dict[tuple[str, str], list[Result]] = {}
            wrk_command: list[str] = []
            for run in range(args.runs):
                # Alternate who goes first so drift on a shared machine hits both alike.
                order = ["python", "nginx"] if run % 2 == 0 else ["nginx", "python"]
                for kind, path in paths.items():
                    for who in order:
                        result, wrk_command = await _wrk(targets[who] + path, args)
                        results.setdefault((who, kind), []).append(result)
                        print(f"run {run + 1} {_line(f'{who} {kind}', result)}", flush=True)
        finally:
            nginx.terminate()
            _, nginx_err = await nginx.communicate()
            if nginx.returncode not in (0, -15):
                print(f"nginx exited with {nginx.returncode}: {nginx_err.decode()}")
    await server.stop()

    print()
    print(f"load: {shlex.join(wrk_command[:-1])} <url>   (median of {args.runs} runs)")
    print(f"nginx: {shlex.join(nginx_command)}")
    summary = {}
    for kind in ("playlist", "segment"):
        ours, peer = _median(results[("python", kind)]), _median(results[("nginx", kind)])
        print(_line(f"python {kind}", ours))
        print(_line(f"nginx {kind}", peer))
        summary[kind] = {
            "metric": f"hls_{kind}_requests_per_second" + ("_750kb" if kind == "segment" else ""),
            "value": round(ours.requests_per_s, 1),
            "unit": "req/s",
            "p99_ms": round(ours.p99_ms, 2),
            "peer": "nginx",
            "peer_value": round(peer.requests_per_s, 1),
            "ratio": round(ours.requests_per_s / peer.requests_per_s, 3),
        }
    errors = sum(r.errors for rs in results.values() for r in rs)
    if errors:
        print(f"WARNING: {errors} failed requests; the figures are not comparable")
    print(json.dumps(summary["playlist"]))
    print(json.dumps(summary["segment"]))
    return 1 if errors else 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.wrk = shutil.which("wrk")
    return args


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.wrk is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        sys.exit(2)
    if not Path(NGINX).exists():
        print(f"{NGINX} is not installed", file=sys.stderr)
        sys.exit(2)
    sys.exit(asyncio.run(main(arguments)))
