"""Broadcast with the real ffmpeg over RTMP, watch with the real ffmpeg/ffprobe over HLS."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tidecast.events.v1 import events_pb2 as ev

from tests.e2e.conftest import Platform
from tests.e2e.media import (
    decode,
    fetch_playlist,
    probe,
    publisher,
    wait_for_playlist,
)
from tests.harness.binaries import needs_ffmpeg

pytestmark = [pytest.mark.e2e, pytest.mark.media, needs_ffmpeg, pytest.mark.timeout(180)]


def spooled_events(platform: Platform) -> list[ev.Event]:
    assert platform.edge.spool is not None
    events = []
    for record in platform.edge.spool.read(100_000):
        event = ev.Event()
        event.ParseFromString(record.payload)
        events.append(event)
    return events


def kinds_for(events: list[ev.Event], stream_id: str) -> list[str]:
    return [str(e.WhichOneof("payload")) for e in events if e.stream_id == stream_id]


@pytest.mark.asyncio
async def test_rtmp_publish_plays_back_over_hls_at_720p_with_audio(platform: Platform) -> None:
    tenant = await platform.create_tenant("acme")
    stream = await platform.create_stream(tenant, "main")
    url = platform.hls_url(stream["playback_id"])
    async with (
        httpx.AsyncClient(timeout=10) as client,
        publisher(platform.rtmp_url(stream["stream_key"]), seconds=10) as pub,
    ):
        first = await wait_for_playlist(client, url, timeout=15)
        assert not first.ended
        assert await pub.wait(timeout=40) == 0, await pub.stderr()
        final = await wait_for_playlist(client, url, timeout=15, ended=True)

    assert final.media_sequence == 0, "a 10 s stream fits the window: nothing slid out"
    names = final.segments
    assert len(names) >= 4
    assert len(set(names)) == len(names)
    info = await probe(url)
    streams = info["streams"]
    assert isinstance(streams, list)
    video = next(s for s in streams if s["codec_type"] == "video")
    audio = next(s for s in streams if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert audio["codec_name"] == "aac"
    assert int(video["nb_read_frames"]) >= 250  # 10 s at 30 fps, minus start-up trimming
    code, errors = await decode(url)
    assert code == 0, errors

    events = spooled_events(platform)
    kinds = kinds_for(events, stream["id"])
    assert kinds[0] == "stream_started"
    assert "stream_ended" in kinds
    started = next(e for e in events if e.WhichOneof("payload") == "stream_started")
    assert started.tenant_id == tenant
    assert started.stream_started.media.width == 1280
    health = [e.ingest_health for e in events if e.WhichOneof("payload") == "ingest_health"]
    assert len(health) >= 5
    steady = health[len(health) // 2]
    assert 25 <= steady.fps <= 35
    assert 1_500_000 <= steady.bitrate_bps <= 5_000_000
    assert 1.5 <= steady.keyframe_interval_s <= 2.5  # -g 60 at 30 fps
    ended = next(e for e in events if e.WhichOneof("payload") == "stream_ended")
    assert ended.stream_ended.reason == ev.END_REASON_PUBLISHER_STOPPED
    assert ended.stream_ended.bytes_in > 1_000_000


@pytest.mark.asyncio
async def test_denied_publishes_leave_a_live_stream_flowing(platform: Platform) -> None:
    tenant = await platform.create_tenant("acme")
    live = await platform.create_stream(tenant, "live")
    disabled = await platform.create_stream(tenant, "off", enabled=False)
    doomed = await platform.create_stream(tenant, "doomed")
    deleted = await platform.api.delete(f"/v1/tenants/{tenant}/streams/{doomed['id']}")
    assert deleted.status_code == 204
    url = platform.hls_url(live["playback_id"])
    async with (
        httpx.AsyncClient(timeout=10) as client,
        publisher(platform.rtmp_url(live["stream_key"]), seconds=20, size="640x360") as pub,
    ):
        before = await wait_for_playlist(client, url, timeout=15)
        for key in (
            "sk_wrong-key",
            disabled["stream_key"],
            doomed["stream_key"],
            live["stream_key"],
        ):
            async with publisher(platform.rtmp_url(key), seconds=5, size="320x240") as bad:
                assert await bad.wait(timeout=10) != 0, f"publish with {key[:6]}... accepted"
        during = await fetch_playlist(client, url)
        assert during is not None and not during.ended
        await asyncio.sleep(2.5)
        after = await fetch_playlist(client, url)
        assert after is not None and not after.ended
        assert len(after.segments) + after.media_sequence > len(before.segments), (
            "the live stream stopped growing while others were refused"
        )
        assert pub.process.returncode is None
    denials = platform.edge.metrics.publish_denials
    assert denials.labels("invalid_key")._value.get() >= 2
    assert denials.labels("stream_disabled")._value.get() >= 1


@pytest.mark.asyncio
async def test_two_tenants_never_see_each_others_segments(platform: Platform) -> None:
    first = await platform.create_stream(await platform.create_tenant("a"), "a")
    second = await platform.create_stream(await platform.create_tenant("b"), "b")
    async with (
        httpx.AsyncClient(timeout=10) as client,
        publisher(platform.rtmp_url(first["stream_key"]), seconds=6, size="320x240"),
        publisher(platform.rtmp_url(second["stream_key"]), seconds=6, size="320x240"),
    ):
        a = await wait_for_playlist(client, platform.hls_url(first["playback_id"]), timeout=15)
        b = await wait_for_playlist(client, platform.hls_url(second["playback_id"]), timeout=15)
    assert not set(a.segments) & set(b.segments)
    base = platform.hls_base
    for name in b.segments:
        foreign = await httpx.AsyncClient().get(f"{base}/hls/{first['playback_id']}/{name}")
        assert foreign.status_code == 404
    own = await httpx.AsyncClient().get(f"{base}/hls/{second['playback_id']}/{b.segments[0]}")
    assert own.status_code == 200


@pytest.mark.asyncio
async def test_killed_publisher_ends_the_stream_and_the_key_works_again(
    platform: Platform,
) -> None:
    tenant = await platform.create_tenant("acme")
    stream = await platform.create_stream(tenant, "main")
    url = platform.hls_url(stream["playback_id"])
    async with httpx.AsyncClient(timeout=10) as client:
        async with publisher(
            platform.rtmp_url(stream["stream_key"]), seconds=60, size="640x360"
        ) as pub:
            await wait_for_playlist(client, url, timeout=15, segments=2)
            await asyncio.sleep(0.7)  # mid-segment
            pub.kill9()
            await pub.process.wait()
            ended = await wait_for_playlist(client, url, timeout=15, ended=True)
        assert ended.ended
        async with publisher(
            platform.rtmp_url(stream["stream_key"]), seconds=4, size="640x360"
        ) as again:
            resumed = await wait_for_playlist(
                client, url, timeout=15, segments=len(ended.segments) + 1
            )
            assert "#EXT-X-DISCONTINUITY" in resumed.text
            assert await again.wait(timeout=20) == 0
    events = spooled_events(platform)
    kinds = kinds_for(events, stream["id"])
    assert kinds.count("stream_started") == 2
    endings = [e.stream_ended for e in events if e.WhichOneof("payload") == "stream_ended"]
    assert endings[0].reason == ev.END_REASON_PUBLISHER_LOST
    assert len({e.session_id for e in endings}) == 2
