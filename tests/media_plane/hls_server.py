"""A real HLS delivery server on 127.0.0.1:0 over a real segment store, and raw clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest_asyncio

from media_plane.media.hooks import PlayDecision, PlayDenial
from media_plane.media.protocol import MediaProtocol
from media_plane.pipelines.remux import SegmentStore
from media_plane.servers.hls import HlsHttpServer

PLAYBACK_ID = "pb-1"
SEGMENT_BYTES = bytes(range(256)) * 3000  # 768,000 bytes, every offset distinguishable


class FakeHooks:
    """Play authorization the tests steer: a decision, a delay, or an exception."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []
        self.decision = PlayDecision(True)
        self.delay = 0.0
        self.error: Exception | None = None
        self.allowed_tokens: set[str] | None = None

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        self.calls.append((playback_id, token, client_addr))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        if self.allowed_tokens is not None and token not in self.allowed_tokens:
            denial = PlayDenial.TOKEN_REQUIRED if token is None else PlayDenial.TENANT_SUSPENDED
            return PlayDecision(False, denial)
        return self.decision


@dataclass
class Deliveries:
    records: list[tuple[str, str, str, int]] = field(default_factory=list)

    def __call__(self, playback_id: str, client: str, user_agent: str, size: int) -> None:
        self.records.append((playback_id, client, user_agent, size))


@dataclass
class Served:
    server: HlsHttpServer
    store: SegmentStore
    hooks: FakeHooks
    deliveries: Deliveries
    segment_name: str
    small_segment_name: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def playlist_path(self) -> str:
        return f"/hls/{PLAYBACK_ID}/index.m3u8"

    @property
    def segment_path(self) -> str:
        return f"/hls/{PLAYBACK_ID}/{self.segment_name}"


StartServer = Callable[..., Awaitable[Served]]


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[StartServer]:
    """Start servers with chosen options; all are stopped after the test."""
    started: list[HlsHttpServer] = []

    async def start(**options: object) -> Served:
        store = SegmentStore()
        name = store.add_segment(
            PLAYBACK_ID, SEGMENT_BYTES, duration=2.0, program_date_time=1_700_000_000.0
        )
        small = store.add_segment(
            PLAYBACK_ID, b"\x47" * 188, duration=2.0, program_date_time=1_700_000_002.0
        )
        hooks = FakeHooks()
        deliveries = Deliveries()
        server = HlsHttpServer(
            store,
            hooks,
            "127.0.0.1",
            0,
            on_delivery=deliveries,
            **options,  # type: ignore[arg-type]
        )
        await server.start()
        started.append(server)
        return Served(server, store, hooks, deliveries, name, small)

    yield start
    for server in started:
        await server.stop()


@pytest_asyncio.fixture
async def served(serve: StartServer) -> Served:
    return await serve()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    head: bytes


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = b"" if head_only or status == 204 else await reader.readexactly(length)
    return RawResponse(status, headers, body, head)


def get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
