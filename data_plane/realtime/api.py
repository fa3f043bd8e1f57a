"""The realtime WebSocket: `/v1/tenants/{tenant_id}/realtime`.

Authenticate with `Authorization: Bearer ...` or `?access_token=...`. The first message is
a snapshot of the tenant's live streams and viewer counts; then `stream_started`,
`stream_ended` and `viewer_count` messages follow as events reach the bus. Send
`{"type": "subscribe", "stream_ids": [...]}` to narrow to some streams (a new snapshot
follows). Close codes: 4401 bad credential, 4404 tenant not visible, 4408 too slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from data_plane.directory.client import DirectoryClient, DirectoryUnavailableError
from data_plane.http.auth import bearer_from, caller_for
from data_plane.realtime.hub import RealtimeHub, Subscriber
from data_plane.settings import DataPlaneSettings

router = APIRouter()

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408
CLOSE_UNAVAILABLE = 1013


def parse_subscribe(text: str, max_streams: int) -> frozenset[str] | None:
    """The stream ids of a subscribe message, None for "all"; ValueError if malformed."""
    message = json.loads(text)
    if not isinstance(message, dict) or message.get("type") != "subscribe":
        raise ValueError('expected {"type": "subscribe", "stream_ids": [...]}')
    ids = message.get("stream_ids")
    if ids is None:
        return None
    if (
        not isinstance(ids, list)
        or len(ids) > max_streams
        or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)
    ):
        raise ValueError(f"stream_ids must be a list of at most {max_streams} stream ids")
    return frozenset(ids)


@router.websocket("/v1/tenants/{tenant_id}/realtime")
async def realtime(websocket: WebSocket, tenant_id: str) -> None:
    directory: DirectoryClient = websocket.app.state.directory
    hub: RealtimeHub = websocket.app.state.hub
    settings: DataPlaneSettings = websocket.app.state.settings
    bearer = bearer_from(
        websocket.headers.get("authorization"), websocket.query_params.get("access_token")
    )
    # Accepted first so the refusal can carry a close code and reason a browser can read
    # (a refused handshake shows up there as an anonymous failure).
    await websocket.accept()
    try:
        caller = await caller_for(directory, bearer)
    except HTTPException:
        await websocket.close(CLOSE_UNAUTHENTICATED, "unauthenticated")
        return
    except DirectoryUnavailableError:
        await websocket.close(CLOSE_UNAVAILABLE, "cannot verify the caller right now")
        return
    if not caller.can_read(tenant_id):
        await websocket.close(CLOSE_NOT_FOUND, "tenant not found")
        return
    subscriber = await hub.subscribe(tenant_id, None)
    try:
        await _serve(websocket, hub, subscriber, settings.realtime_max_subscribe_streams)
    finally:
        hub.unsubscribe(subscriber)


async def _serve(
    websocket: WebSocket, hub: RealtimeHub, subscriber: Subscriber, max_streams: int
) -> None:
    current = subscriber
    #: Set when a subscribe replaces `current`: the sender stops waiting on the old queue,
    #: which nothing feeds any more, and follows the new one (its snapshot comes first).
    switched = asyncio.Event()

    async def send_loop() -> None:
        while True:
            following = current
            switched.clear()
            queue_get = asyncio.ensure_future(following.queue.get())
            dropped = asyncio.ensure_future(following.dropped.wait())
            changed = asyncio.ensure_future(switched.wait())
            waits = (queue_get, dropped, changed)
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when the connection ends mid-wait: no wait outlives its loop.
                for task in waits:
                    task.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if following is not current:
                continue  # what the old subscription still held is superseded
            if queue_get in done:
                await websocket.send_json(queue_get.result())
            elif dropped in done:
                await websocket.close(CLOSE_TOO_SLOW, "too slow: reconnect for a fresh snapshot")
                return

    async def receive_loop() -> None:
        nonlocal current
        while True:
            text = await websocket.receive_text()
            try:
                streams = parse_subscribe(text, max_streams)
            except ValueError as exc:
                await websocket.send_json({"type": "error", "message": str(exc)})
                continue
            previous = current
            current = await hub.subscribe(previous.tenant_id, streams)
            switched.set()
            hub.unsubscribe(previous)

    sender = asyncio.create_task(send_loop())
    receiver = asyncio.create_task(receive_loop())
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                task.result()
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        hub.unsubscribe(current)
