"""HlsOutput wired to a real StreamRegistry: threads, queues, the store, back-pressure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from media_plane.media import AudioTrack, Codec, MediaPacket, TrackKind, VideoTrack
from media_plane.media.hooks import PublishGrant
from media_plane.media.live_stream import StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.remux import HlsOutput, SegmentStore
from media_plane.pipelines.remux.packager import PackagerPool
from tests.media_plane.broadcasts import Broadcast


def _packager_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hls-packager")]


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _ended(store: SegmentStore, playback_id: str) -> bool:
    playlist = store.playlist(playback_id)
    return playlist is not None and playlist.endswith(b"#EXT-X-ENDLIST\n")


def _publish(registry: StreamRegistry, media: Broadcast, stream_id: str, playback_id: str) -> None:
    stream = registry.start(PublishGrant(stream_id, playback_id), MediaProtocol.RTMP, "127.0.0.1")
    stream.set_tracks(media.video, media.audio)
    for packet in media.packets:
        stream.push(packet)
    registry.finish(stream)


@pytest.mark.media
@pytest.mark.asyncio
async def test_a_publish_ends_up_as_an_ended_playlist(
    broadcast: Callable[..., Broadcast],
) -> None:
    registry = StreamRegistry()
    output = HlsOutput(registry, workers=2)
    await output.start()
    try:
        _publish(registry, broadcast(5.0), "s1", "pb1")
        await _until(lambda: _ended(output.store, "pb1"))
        playlist = output.store.playlist("pb1")
        assert playlist is not None
        names = [line for line in playlist.decode().splitlines() if line.endswith(".ts")]
        assert len(names) == 3
        assert all((output.store.segment("pb1", name) or b"")[:1] == b"\x47" for name in names)
        stats = output.stats()
        assert stats.live_streams == 0
        assert stats.packager.segments_out == 3
        assert stats.packager.packets_dropped == 0
        assert stats.packager.packets_in == len(broadcast(5.0).packets)
    finally:
        await output.stop()
    assert _packager_threads() == []


@pytest.mark.media
@pytest.mark.asyncio
async def test_a_reconnect_continues_the_playlist(broadcast: Callable[..., Broadcast]) -> None:
    registry = StreamRegistry()
    output = HlsOutput(registry)
    await output.start()
    try:
        media = broadcast(3.0)
        _publish(registry, media, "s1", "pb")
        await _until(lambda: _ended(output.store, "pb"))
        _publish(registry, media, "s1", "pb")
        await _until(lambda: (output.store.playlist("pb") or b"").count(b".ts\n") == 4)
        await _until(lambda: _ended(output.store, "pb"))
        lines = (output.store.playlist("pb") or b"").decode().splitlines()
        names = [line for line in lines if line.endswith(".ts")]
        assert [name.split("-")[0] for name in names] == ["0", "1", "2", "3"]
        assert lines[lines.index("#EXT-X-DISCONTINUITY") + 3] == names[2]
    finally:
        await output.stop()


@pytest.mark.asyncio
async def test_streams_started_before_start_are_attached_on_start() -> None:
    registry = StreamRegistry()
    output = HlsOutput(registry)
    stream = registry.start(PublishGrant("s1", "pb"), MediaProtocol.RTMP, "127.0.0.1")
    await output.start()
    try:
        assert output.stats().live_streams == 1
        registry.finish(stream)
        assert output.stats().live_streams == 0
    finally:
        await output.stop()


@pytest.mark.asyncio
async def test_a_stopped_output_ignores_new_streams() -> None:
    registry = StreamRegistry()
    output = HlsOutput(registry)
    await output.start()
    await output.stop()
    registry.start(PublishGrant("s1", "pb"), MediaProtocol.RTMP, "127.0.0.1")
    assert output.stats().live_streams == 0
    assert _packager_threads() == []


@pytest.mark.asyncio
async def test_unsupported_codecs_produce_no_segments_and_no_errors() -> None:
    registry = StreamRegistry()
    output = HlsOutput(registry)
    await output.start()
    try:
        stream = registry.start(PublishGrant("s1", "pb"), MediaProtocol.RTMP, "127.0.0.1")
        stream.set_tracks(VideoTrack(Codec.HEVC, b"\x01"), AudioTrack(Codec.OPUS, b"", 48000, 2))
        for index in range(100):
            stream.push(MediaPacket(TrackKind.VIDEO, index * 3000, index * 3000, b"x", True))
        registry.finish(stream)
        await _until(lambda: output.stats().packager.queued == 0)
        await asyncio.sleep(0.05)
        assert output.store.playlist("pb") is None
        assert output.stats().packager.mux_errors == 0
    finally:
        await output.stop()


@pytest.mark.asyncio
async def test_a_full_queue_drops_packets_and_skips_video_to_the_next_keyframe() -> None:
    loop = asyncio.get_running_loop()
    pool = PackagerPool(lambda *_: None, lambda *_: None, queue_limit=10)
    packager = pool.packager("pb", "s1", 2.0)

    def video(index: int, keyframe: bool = False) -> MediaPacket:
        return MediaPacket(TrackKind.VIDEO, index * 3000, index * 3000, b"v", keyframe)

    # Threads not started yet: nothing drains the queue.
    for index in range(25):
        packager.on_packet(video(index, keyframe=index == 0))
    assert pool.stats().packets_dropped == 15
    assert pool.stats().queued == 10
    pool.start(loop)
    try:
        await _until(lambda: pool.stats().queued == 0)
        packager.on_packet(video(26))  # not a keyframe: still skipped
        packager.on_packet(MediaPacket(TrackKind.AUDIO, 0, 0, b"a"))  # audio goes through
        assert pool.stats().packets_dropped == 16
        packager.on_packet(video(30, keyframe=True))
        packager.on_packet(video(31))
        assert pool.stats().packets_dropped == 16
        assert pool.stats().packets_in == 29
    finally:
        await asyncio.to_thread(pool.stop)
