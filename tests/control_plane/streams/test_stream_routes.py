"""Stream routes on both backends: lifecycle, keys, pages, playback tokens."""

from __future__ import annotations

import pytest

from tests.control_plane.running import ControlPlane, walk

pytestmark = pytest.mark.asyncio


# -- streams ------------------------------------------------------------------------------


async def test_stream_lifecycle_and_key_shown_only_on_create_and_rotate(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    created = await control.stream(
        tenant, name="main", private_playback=True, transcode_profile="ladder-720"
    )
    key = created["stream_key"]
    assert key.startswith("sk_") and len(key) > 20
    assert created["ingest_url"] == f"rtmp://edge.test/live/{key}"
    assert created["playback_url"] == f"http://edge.test/hls/{created['playback_id']}/index.m3u8"
    assert created["whip_url"] == "http://edge.test:8089/whip"
    assert created["whep_url"] == f"http://edge.test:8089/whep/{created['playback_id']}"
    assert (created["enabled"], created["live"], created["recording"]) == (True, False, False)
    url = f"/v1/tenants/{tenant}/streams/{created['id']}"
    fetched = await control.client.get(url)
    assert fetched.status_code == 200
    assert "stream_key" not in fetched.json() and key not in fetched.text
    shown_with_the_key = ("stream_key", "ingest_url", "whip_url", "whep_url")
    assert {k: v for k, v in created.items() if k not in shown_with_the_key} == fetched.json()

    patched = await control.client.patch(url, json={"enabled": False, "name": "renamed"})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["name"] == "renamed"
    assert patched.json()["transcode_profile"] == "ladder-720", "unset fields are kept"
    assert patched.json()["updated_at"] >= created["updated_at"]
    cleared = await control.client.patch(url, json={"transcode_profile": ""})
    assert cleared.json()["transcode_profile"] == ""

    rotated = await control.client.post(f"{url}/rotate-key")
    assert rotated.status_code == 200
    assert rotated.json()["stream_key"] not in (key, "")
    assert rotated.json()["playback_id"] == created["playback_id"]
    assert key not in (await control.client.get(url)).text

    deleted = await control.client.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await control.client.get(url)).status_code == 404
    assert (await control.client.delete(url)).status_code == 404
    assert (await control.client.post(f"{url}/rotate-key")).status_code == 404


async def test_pagination_walks_every_stream_exactly_once(control: ControlPlane) -> None:
    tenant = await control.tenant()
    other = await control.tenant()
    await control.stream(other, name="not mine")
    ids = {(await control.stream(tenant, name=f"s{i}"))["id"] for i in range(120)}
    seen, pages = await walk(control, f"/v1/tenants/{tenant}/streams", limit=50)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == ids
    exact, pages = await walk(control, f"/v1/tenants/{tenant}/streams", limit=120)
    assert pages == 1 and set(exact) == ids
    default = (await control.client.get(f"/v1/tenants/{tenant}/streams")).json()
    assert len(default["items"]) == 50 and default["next_cursor"]


async def test_playback_tokens_are_signed_and_bounded(control: ControlPlane) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant, private_playback=True)
    url = f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens"
    issued = await control.client.post(url, json={"ttl_seconds": 600})
    assert issued.status_code == 201
    body = issued.json()
    assert body["playback_url"] == f"{stream['playback_url']}?token={body['token']}"
    assert body["token"].count(".") == 2  # a JWT
    default = await control.client.post(url, json={})
    assert default.status_code == 201 and default.json()["expires_at"] > body["expires_at"]
    too_long = await control.client.post(url, json={"ttl_seconds": 10**9})
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "invalid_request"
    for ttl in (0, -1, "soon"):
        assert (await control.client.post(url, json={"ttl_seconds": ttl})).status_code == 422
