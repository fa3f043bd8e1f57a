"""Every form in which encoders send an RTMP stream key reaches the publish decision, and
a publish with none is refused with a status saying which forms work."""

from __future__ import annotations

import asyncio

import pytest

from media_plane.media.events import PublishDenied
from tests.media_plane.rtmp_rig import Publishers, RawClient, Rig, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.media
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "live/good",  # the publish name
        "live?key=good",  # a query on the app, as some encoders write it
        "live/?key=good",  # a query on an empty publish name
        "live/good/",  # the key in the app, with an empty publish name
    ],
)
async def test_ffmpeg_publishes_with_the_key_in_each_form(
    rig: Rig, publishers: Publishers, path: str
) -> None:
    base = rig.url("").removesuffix("/live/")
    process = await publishers.start(f"{base}/{path}", 1)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert [key for key, _, _ in rig.hooks.asked] == ["good"]
    await wait_until(lambda: rig.recorders["s1"] and rig.recorders["s1"][0].ended)


@pytest.mark.asyncio
async def test_obs_with_the_whole_url_as_server_and_no_stream_key_publishes(rig: Rig) -> None:
    # OBS (librtmp) with Server rtmp://host/live/good and an empty Stream Key.
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    tc_url = f"rtmp://127.0.0.1:{rig.server.port}/live/good"
    client.command("connect", 1.0, {"app": "live/good", "tcUrl": tc_url})
    client.command("createStream", 2.0, None)
    await client.read_messages(lambda m: len(m) >= 5)
    client.command("publish", 3.0, None, "", "live", stream_id=1)
    assert (await client.statuses(until="NetStream.Publish.Start"))[-1] == "NetStream.Publish.Start"
    assert [key for key, _, _ in rig.hooks.asked] == ["good"]
    client.close()


@pytest.mark.asyncio
async def test_no_key_anywhere_is_refused_naming_the_forms_that_work(rig: Rig) -> None:
    client = await RawClient.connect(rig.server.port)
    await client.handshake()
    client.command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"})
    client.command("createStream", 2.0, None)
    await client.read_messages(lambda m: len(m) >= 5)
    client.command("publish", 3.0, None, "", "live", stream_id=1)
    codes = await client.statuses(until="NetStream.Publish.BadName")
    assert codes[-1] == "NetStream.Publish.BadName"
    assert await client.closed_within(1.0)
    [event] = rig.hooks.events
    assert isinstance(event, PublishDenied) and event.reason == "invalid_key"
    assert "rtmp://<host>/live/<key>" in event.message and "?key=<key>" in event.message
    assert rig.hooks.asked == []
