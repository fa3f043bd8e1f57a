"""The passthrough path's Python work per stage, in process, without sockets or threads.

    .venv/bin/python bench/passthrough_stages.py [--reps 5]

The 20 s source of `rtmp_passthrough.py` is encoded once; its FLV tags are chunked as an
RTMP publisher sends them and replayed through each stage alone (chunk reader; FLV parse
into packets; `LiveStream.push` with the ingest meter; segmenter with the PyAV TS muxer).
Each figure is the best of `--reps` passes, in CPU per second of media: what the work
itself costs with warm caches. Held against the engine process's CPU in
`rtmp_passthrough.py`, the difference is what waking up costs (event loop, syscalls,
thread hand-offs, cold code).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rtmp_passthrough import make_source
from media_plane.media import AudioTrack, MediaPacket, VideoTrack
from media_plane.media.hooks import PublishGrant
from media_plane.media.live_stream import LiveStream
from media_plane.pipelines.remux.segmenter import MuxedSegment, Segmenter
from media_plane.protocols.mpegts.muxer import carry_continuity
from media_plane.protocols.rtmp.chunks import AUDIO, VIDEO, ChunkReader, RtmpMessage, encode_message
from media_plane.protocols.rtmp.media_feed import MediaFeed
from media_plane.reporting.ingest_meter import IngestMeter

_CHUNK_SIZE = 4096  # what ffmpeg announces as a publisher


def flv_tags(path: Path) -> list[tuple[int, int, bytes]]:
    """(type id, timestamp ms, body) of every audio and video tag of an FLV file."""
    data = path.read_bytes()
    tags, pos = [], 13  # FLV header and the first back pointer
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        if data[pos] & 0x1F in (AUDIO, VIDEO):
            tags.append((data[pos] & 0x1F, ts, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    return tags


class _Collect:
    def __init__(self) -> None:
        self.packets: list[MediaPacket] = []
        self.tracks: tuple[VideoTrack | None, AudioTrack | None] = (None, None)

    def set_tracks(self, video: VideoTrack | None, audio: AudioTrack | None) -> None:
        self.tracks = (video, audio)

    def push(self, packet: MediaPacket) -> None:
        self.packets.append(packet)


def best_cpu(run: Callable[[], object], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.flv"
        make_source(source, 20)
        tags = flv_tags(source)
    media_s = tags[-1][1] / 1000
    wire = [
        encode_message(RtmpMessage(t, 1, ts, body, 6 if t == VIDEO else 4), _CHUNK_SIZE)
        for t, ts, body in tags
    ]
    collected = _Collect()
    feed = MediaFeed()
    feed.attach(collected)
    for type_id, ts, body in tags:
        feed.message(type_id, ts, body)
    packets, (video, audio) = collected.packets, collected.tracks
    segments: list[MuxedSegment] = []

    def chunks() -> None:
        reader = ChunkReader()
        reader.chunk_size = _CHUNK_SIZE
        for piece in wire:
            reader.feed(piece)

    def parse() -> None:
        feed = MediaFeed()
        feed.attach(_Collect())
        for type_id, ts, body in tags:
            feed.message(type_id, ts, body)

    def push() -> None:
        stream = LiveStream(PublishGrant("s", "s"), "rtmp", "127.0.0.1")
        stream.attach(IngestMeter(0.0))
        for packet in packets:
            stream.push(packet)

    def mux() -> None:
        segmenter = Segmenter(video, audio, target_duration=2.0)
        segments.clear()
        for packet in packets:
            if (segment := segmenter.push(packet)) is not None:
                segments.append(segment)

    def continuity() -> None:
        counters: dict[int, int] = {}
        for segment in segments:
            carry_continuity(bytearray(segment.data), counters)

    print(f"{len(packets)} packets, {media_s:.1f} s of media")
    stages = [
        ("chunk reader", chunks),
        ("FLV parse into packets", parse),
        ("LiveStream.push + ingest meter", push),
        ("segmenter + PyAV TS muxer", mux),
        ("  of which the continuity rewrite", continuity),
    ]
    for label, run in stages:
        cpu = best_cpu(run, args.reps)
        print(
            f"{label:36s} {100 * cpu / media_s:6.3f}% of a core, "
            f"{1e6 * cpu / len(packets):5.1f} us per packet",
            flush=True,
        )


if __name__ == "__main__":
    main()
