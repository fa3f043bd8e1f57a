"""Synthetic broadcasts for the HLS tests, produced with PyAV at test time.

Frames and a tone are encoded with libx264 (GOP 30 at 30 fps) and AAC into FLV in memory,
then demuxed again: FLV is what RTMP carries, so the packets come out exactly in the
canonical form the RTMP ingest produces (AVCC access units with the avcC record as
extradata, raw AAC frames with the AudioSpecificConfig, millisecond timestamps).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack


@dataclass(frozen=True)
class Broadcast:
    video: VideoTrack | None
    audio: AudioTrack | None
    packets: list[MediaPacket]


def _tone(start: int, count: int, rate: int) -> bytes:
    return b"".join(
        struct.pack("<hh", v, v)
        for v in (
            int(6000 * math.sin(2 * math.pi * 440 * (start + j) / rate)) for j in range(count)
        )
    )


def encode_broadcast(
    seconds: float,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    gop: int = 30,
    video: bool = True,
    audio: bool = True,
    forced_keyframes: tuple[int, ...] = (),
) -> Broadcast:
    """`forced_keyframes`: frame indices encoded as IDR frames besides the GOP's, as an
    encoder's scene cut does (x264 counts its GOP from there)."""
    import av

    flv = io.BytesIO()
    out = av.open(flv, "w", format="flv")
    if video:
        vstream = out.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.options = {
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "preset": "ultrafast",
            "bf": "2",
            "forced-idr": "1",
        }
    if audio:
        astream = out.add_stream("aac", rate=48000, layout="stereo")
    if video:
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame(width, height, "yuv420p")
            for k, plane in enumerate(frame.planes):
                plane.update(bytes([(i * 7 + k * 50) % 256]) * plane.buffer_size)
            frame.pts = i
            if i in forced_keyframes:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in vstream.encode(frame):
                out.mux(packet)
        for packet in vstream.encode():
            out.mux(packet)
    if audio:
        rate, done, total = 48000, 0, int(seconds * 48000)
        while done < total:
            samples = av.AudioFrame(format="s16", layout="stereo", samples=1024)
            samples.planes[0].update(_tone(done, 1024, rate))
            samples.sample_rate, samples.pts = rate, done
            for packet in astream.encode(samples):
                out.mux(packet)
            done += 1024
        for packet in astream.encode():
            out.mux(packet)
    out.close()

    demux = av.open(io.BytesIO(flv.getvalue()), mode="r")
    video_track: VideoTrack | None = None
    audio_track: AudioTrack | None = None
    if demux.streams.video:
        vctx = demux.streams.video[0].codec_context
        video_track = VideoTrack(Codec.H264, vctx.extradata or b"", vctx.width, vctx.height)
    if demux.streams.audio:
        actx = demux.streams.audio[0].codec_context
        audio_track = AudioTrack(Codec.AAC, actx.extradata or b"", actx.sample_rate, actx.channels)
    packets = []
    for packet in demux.demux():
        if packet.size == 0 or packet.dts is None or packet.pts is None:
            continue
        kind = TrackKind.VIDEO if packet.stream.type == "video" else TrackKind.AUDIO
        # FLV milliseconds to the engine's 90 kHz clock, as the RTMP ingest does.
        packets.append(
            MediaPacket(kind, packet.dts * 90, packet.pts * 90, bytes(packet), packet.is_keyframe)
        )
    demux.close()
    return Broadcast(video_track, audio_track, packets)


@pytest.fixture(scope="session")
def broadcast() -> Callable[..., Broadcast]:
    cache: dict[tuple[object, ...], Broadcast] = {}

    def make(seconds: float = 6.0, **options: object) -> Broadcast:
        key = (seconds, *sorted(options.items()))
        if key not in cache:
            cache[key] = encode_broadcast(seconds, **options)  # type: ignore[arg-type]
        return cache[key]

    return make
