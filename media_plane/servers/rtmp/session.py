"""One RTMP connection: handshake, commands, and a publish feeding the engine.

A session is an `asyncio.Protocol`: bytes arrive in `data_received`, go through the pure
handshake, chunk reader and media feed, and nothing runs per connection in between.
The only task a session starts is the `authorize_publish` call, through the server's
`spawn`, so the server owns it.

What a connection may cost is bounded by `RtmpLimits`: until a publish is authorized it
may send `unauthorized_max_bytes` and `unauthorized_max_messages` and declare only
small messages; one read is parsed `chunks_per_turn` chunks at a time, reading paused
in between, so a connection that makes every byte a message shares the loop instead of
holding it; a peer that lets replies pile up unread is dropped. The server decides
admission (`on_open`) and the memory shared by all connections (`on_buffered`).

Ending: a publish ends exactly once (`registry.finish`), on FCUnpublish, deleteStream or
closeStream ("publisher_stopped"), when the connection goes away ("publisher_lost"), on
a protocol error ("protocol_error") or when the server stops ("node_stopped"). Every
connection logs one line when it closes, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any

from media_plane.media.events import PublishDenied
from media_plane.media.hooks import (
    EngineHooks,
    PublishDecision,
    PublishDenial,
)
from media_plane.media.live_stream import AlreadyLiveError, LiveStream, StreamRegistry
from media_plane.media.protocol import MediaProtocol
from media_plane.protocols.rtmp import commands
from media_plane.protocols.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AGGREGATE,
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DEFAULT_CHUNK_SIZE,
    SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.protocols.rtmp.commands import DENIAL_STATUS, Command
from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.handshake import ServerHandshake
from media_plane.protocols.rtmp.media_feed import MediaFeed
from media_plane.servers.rtmp.limits import RtmpLimits
from media_plane.servers.rtmp.read_batching import ReadBatching

__all__ = ["Phase", "RtmpSession", "SessionOptions"]

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None]]

_CONTROL_CSID = 2
_COMMAND_CSID = 3
_STREAM_CSID = 5
_STREAM_ID = 1


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Per-connection knobs; the defaults suit OBS and FFmpeg."""

    #: Chunk size we announce and write with.
    out_chunk_size: int = 4096
    #: Window Acknowledgement Size and Set Peer Bandwidth we announce.
    window_ack_size: int = 2_500_000
    #: How long `authorize_publish` may take before the publish is refused.
    authorize_timeout: float = 10.0
    #: How long a refused connection gets to flush its status before it is cut.
    refuse_close_delay: float = 0.1


class Phase(Enum):
    HANDSHAKE = "handshake"
    #: Handshake done; waiting for connect, or connected and not publishing.
    CONNECTED = "connected"
    AUTHORIZING = "authorizing"
    PUBLISHING = "publishing"
    CLOSING = "closing"


class RtmpSession(asyncio.Protocol):
    def __init__(
        self,
        registry: StreamRegistry,
        hooks: EngineHooks,
        options: SessionOptions,
        limits: RtmpLimits,
        *,
        spawn: Spawn,
        on_open: Callable[[RtmpSession], str | None],
        on_buffered: Callable[[RtmpSession, int], None],
        on_close: Callable[[RtmpSession], None],
        clock: Callable[[], float] = time.monotonic,
        number: int = 0,
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self._options = options
        self._limits = limits
        self._spawn = spawn
        self._on_open = on_open
        self._on_buffered = on_buffered
        self._on_close = on_close
        self._clock = clock
        self._number = number
        self._transport: asyncio.Transport | None = None
        self._handshake = ServerHandshake()
        self._reader = ChunkReader(
            max_message_size=limits.unauthorized_max_message_bytes,
            max_partial=limits.max_partial_messages,
            max_buffered=limits.unauthorized_max_bytes,
            max_chunks=limits.chunks_per_turn,
        )
        #: Bytes the reader held after the last read (what `on_buffered` was told).
        self.buffered = 0
        self._resume: asyncio.Handle | None = None
        #: `_received` when the connection last became unauthorized, and messages since.
        self._unauthorized_from = 0
        self._unauthorized_messages = 0
        #: Whether the connection was cut for going over a limit (timeouts included).
        self.hit_limit = False
        self._out_chunk_size = DEFAULT_CHUNK_SIZE
        #: The peer's IP address (per-address limits), and with its port (logs, events).
        self.client_host = "unknown"
        self.client_addr = "unknown"
        self._prefix = f"rtmp#{number}"
        self.phase = Phase.HANDSHAKE
        self.opened_at = clock()
        self.last_data_at = self.opened_at
        #: Since when this connection has been without a publish (or a pending one).
        self.unpublished_since = self.opened_at
        self._connected = False
        #: The connect command: its app and tcUrl hold the key when the publish name is empty.
        self._connect: Command | None = None
        self._received = 0
        self._acked = 0
        self._ack_window = 0
        self._feed: MediaFeed | None = None
        self._read_batching: ReadBatching | None = None
        self._authorizing: asyncio.Task[None] | None = None
        self.stream: LiveStream | None = None
        self._close_reason = ""
        self._close_level = logging.INFO
        self._cut_timer: asyncio.TimerHandle | None = None

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    @property
    def authorized(self) -> bool:
        """Publishing under a granted publish: the trusted regime."""
        return self.phase is Phase.PUBLISHING

    @property
    def publishing(self) -> bool:
        """Publishing, or waiting for the answer to a publish."""
        return self.phase is Phase.PUBLISHING or self.phase is Phase.AUTHORIZING

    @property
    def read_watermark(self) -> int:
        """Bytes the kernel gathers before waking this connection (1: every byte)."""
        return self._read_batching.watermark if self._read_batching is not None else 1

    def tune_reads(self, now: float) -> None:
        """Lets the kernel batch a publisher's bytes per its current rate (the server's
        sweep calls this about once a second)."""
        if self._read_batching is not None:
            self._read_batching.tune(self._received, now, self._ack_window)

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client_host = str(peer[0])
            self.client_addr = f"{peer[0]}:{peer[1]}"
        self._prefix = f"rtmp#{self._number} {self.client_addr}"
        if self.phase is Phase.CLOSING:  # dropped (server stopping) before it was made
            transport.abort()
            return
        refusal = self._on_open(self)
        if refusal is not None:
            self.drop(refusal)

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.CLOSING:
            return
        self.last_data_at = self._clock()
        self._received += len(data)
        try:
            if self.phase is Phase.HANDSHAKE:
                reply, data = self._handshake.feed(data)
                if reply:
                    self._write(reply)
                if not self._handshake.done:
                    return
                self.phase = Phase.CONNECTED
                self._unauthorized_from = self._received - len(data)
                if not data:
                    return
            self._parse(data)
        except RtmpProtocolError as exc:
            self._close(f"protocol error: {exc}", "protocol_error", level=logging.WARNING)
        except Exception:
            logger.exception("%s: failed to handle incoming data", self._prefix)
            self._close("internal error", "protocol_error", level=logging.WARNING)

    def _parse(self, data: bytes) -> None:
        reader = self._reader
        for message in reader.feed(data):
            if self.phase is not Phase.PUBLISHING:
                self._unauthorized_messages += 1
                if self._unauthorized_messages > self._limits.unauthorized_max_messages:
                    self._over_limit(
                        f"more than {self._limits.unauthorized_max_messages} messages "
                        "before a publish was authorized"
                    )
                    return
            self._on_message(message)
            if self.phase is Phase.CLOSING:
                return
        if (
            self.phase is not Phase.PUBLISHING
            and self._received - self._unauthorized_from > self._limits.unauthorized_max_bytes
        ):
            self._over_limit(
                f"more than {self._limits.unauthorized_max_bytes} bytes "
                "before a publish was authorized"
            )
            return
        if self._ack_window and self._received - self._acked >= self._ack_window:
            self._acked = self._received
            self._send(ACKNOWLEDGEMENT, commands.acknowledgement(self._received))
        buffered = reader.buffered
        if buffered != self.buffered:
            self._on_buffered(self, buffered)
            self.buffered = buffered
        if reader.held and self._resume is None and self.phase is not Phase.CLOSING:
            # The rest of this read waits for a later turn; no new bytes until then.
            transport = self._transport
            if transport is not None:
                transport.pause_reading()
                self._resume = asyncio.get_running_loop().call_soon(self._go_on)

    def _go_on(self) -> None:
        self._resume = None
        if self.phase is Phase.CLOSING:
            return
        self._guarded_parse(b"")
        transport = self._transport
        if self._resume is None and transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _guarded_parse(self, data: bytes) -> None:
        try:
            self._parse(data)
        except RtmpProtocolError as exc:
            self._close(f"protocol error: {exc}", "protocol_error", level=logging.WARNING)
        except Exception:
            logger.exception("%s: failed to handle incoming data", self._prefix)
            self._close("internal error", "protocol_error", level=logging.WARNING)

    def _over_limit(self, why: str) -> None:
        self.hit_limit = True
        self._close(why, "publisher_lost", level=logging.WARNING)

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSING
        if self._cut_timer is not None:
            self._cut_timer.cancel()
            self._cut_timer = None
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if not self._close_reason:
            self._close_reason = "closed by peer" if exc is None else f"connection lost: {exc}"
        self._end_publish("publisher_lost")
        lifetime = self._clock() - self.opened_at
        logger.log(
            self._close_level,
            "%s: connection closed after %.1f s, %d bytes in: %s",
            self._prefix,
            lifetime,
            self._received,
            self._close_reason,
        )
        self._transport = None
        self._on_close(self)

    # -- closing ----------------------------------------------------------------------

    def drop(
        self,
        why: str,
        *,
        reason: str = "publisher_lost",
        level: int = logging.WARNING,
        limit: bool = True,
    ) -> None:
        """Cuts this connection at once, ending its publish (if any) with `reason`;
        `limit`: it went over one of the server's limits."""
        if self.phase is not Phase.CLOSING:
            self.hit_limit = limit
        self._close(why, reason, level=level)

    def _close(
        self, why: str, stream_reason: str, *, level: int = logging.INFO, graceful: bool = False
    ) -> None:
        if self.phase is Phase.CLOSING:
            return
        self.phase = Phase.CLOSING
        self._close_reason = why
        self._close_level = level
        self._end_publish(stream_reason)
        transport = self._transport
        if transport is None:
            return
        if graceful:
            # Let the final status reach the peer, but never wait on it for long.
            transport.close()
            self._cut_timer = asyncio.get_running_loop().call_later(
                self._options.refuse_close_delay, transport.abort
            )
        else:
            transport.abort()

    def _end_publish(self, reason: str) -> None:
        task, self._authorizing = self._authorizing, None
        if task is not None:
            task.cancel()
        stream, self.stream = self.stream, None
        batching, self._read_batching = self._read_batching, None
        if batching is not None and self.phase is not Phase.CLOSING:
            batching.reset()  # the connection stays: what follows are commands
        if self._feed is not None:
            self._feed.detach()
            self._feed = None
        if self.publishing:
            # Only a granted publish earned the budget back; one still being authorized
            # did not (else publish/unpublish cycles would make the budget endless).
            if self.phase is Phase.PUBLISHING:
                self._distrust()
            self.phase = Phase.CONNECTED
            self.unpublished_since = self._clock()
        if stream is not None:
            self._registry.finish(stream, reason)
            logger.info("%s: stream %s ended (%s)", self._prefix, stream.stream_id, reason)

    # -- writing ----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
            if transport.get_write_buffer_size() > self._limits.max_write_buffer_bytes:
                self._over_limit(
                    f"more than {self._limits.max_write_buffer_bytes} bytes of replies unread"
                )

    def _send(
        self, type_id: int, payload: bytes, *, csid: int = _CONTROL_CSID, stream_id: int = 0
    ) -> None:
        message = RtmpMessage(type_id, stream_id, 0, payload, csid)
        self._write(encode_message(message, self._out_chunk_size))

    def _send_command(self, payload: bytes, stream_id: int = 0) -> None:
        csid = _COMMAND_CSID if stream_id == 0 else _STREAM_CSID
        self._send(COMMAND_AMF0, payload, csid=csid, stream_id=stream_id)

    # -- incoming messages ------------------------------------------------------------

    def _on_message(self, message: RtmpMessage) -> None:
        type_id = message.type_id
        if type_id in (VIDEO, AUDIO, AGGREGATE):
            if self._feed is not None:
                self._feed.message(type_id, message.timestamp, message.payload)
        elif type_id in (COMMAND_AMF0, COMMAND_AMF3):
            command = commands.parse_command(
                message.payload, message.stream_id, amf3=type_id == COMMAND_AMF3
            )
            self._on_command(command)
        elif type_id == WINDOW_ACK_SIZE:
            if len(message.payload) < 4:
                raise RtmpProtocolError("short Window Acknowledgement Size")
            self._ack_window = int.from_bytes(message.payload[:4], "big")
        # Everything else needs no answer: Set Chunk Size and Abort are applied by the
        # reader; data messages (onMetaData), user control, acknowledgements, peer
        # bandwidth and shared objects are ignored.

    def _on_command(self, command: Command) -> None:
        name = command.name
        if name == "connect":
            self._on_connect(command)
        elif not self._connected:
            raise RtmpProtocolError(f"{name!r} before connect")
        elif name == "publish":
            self._on_publish(command)
        elif name == "createStream":
            self._send_command(commands.result(command.transaction, float(_STREAM_ID)))
        elif name == "releaseStream":
            self._send_command(commands.result(command.transaction))
        elif name == "FCPublish":
            self._send_command(
                commands.on_fc_publish("NetStream.Publish.Start", command.arg_string(1))
            )
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            self._end_publish("publisher_stopped")
        elif name in ("play", "play2"):
            self._send_command(
                commands.on_status(
                    "error",
                    "NetStream.Play.Failed",
                    "playback over RTMP is not offered; use HLS or WebRTC",
                ),
                command.stream_id or _STREAM_ID,
            )
            self._close("play refused", "publisher_stopped", graceful=True)
        else:
            logger.debug("%s: ignoring command %r", self._prefix, name)

    def _on_connect(self, command: Command) -> None:
        self._connected = True
        self._connect = command
        options = self._options
        self._send(WINDOW_ACK_SIZE, commands.window_ack_size(options.window_ack_size))
        self._send(SET_PEER_BANDWIDTH, commands.set_peer_bandwidth(options.window_ack_size))
        self._send(SET_CHUNK_SIZE, commands.set_chunk_size(options.out_chunk_size))
        self._out_chunk_size = options.out_chunk_size
        self._send_command(commands.connect_result(command.transaction))

    # -- publishing -------------------------------------------------------------------

    def _on_publish(self, command: Command) -> None:
        if self.publishing:
            raise RtmpProtocolError("publish while already publishing")
        stream_id = command.stream_id or _STREAM_ID
        key = commands.publish_key(command.arg_string(1), self._connect)
        if not key:
            self._refuse(
                stream_id, PublishDenial.INVALID_KEY, f"empty stream key: {commands.KEY_FORMS}"
            )
            return
        self.phase = Phase.AUTHORIZING
        self._feed = MediaFeed()
        self._authorizing = self._spawn(self._authorize(key, stream_id), f"{self._prefix} auth")

    async def _authorize(self, key: str, stream_id: int) -> None:
        try:
            try:
                async with asyncio.timeout(self._options.authorize_timeout):
                    decision = await self._hooks.authorize_publish(
                        key, MediaProtocol.RTMP, self.client_addr
                    )
            except TimeoutError:
                decision = PublishDecision.deny(
                    PublishDenial.UNAVAILABLE, "authorization timed out"
                )
            except Exception:
                logger.exception("%s: authorize_publish failed", self._prefix)
                decision = PublishDecision.deny(PublishDenial.UNAVAILABLE, "authorization failed")
            self._authorizing = None
            if self.phase is Phase.AUTHORIZING:
                self._decided(decision, stream_id)
        except Exception:
            logger.exception("%s: could not start the publish", self._prefix)
            self._close("internal error", "protocol_error", level=logging.WARNING)

    def _decided(self, decision: PublishDecision, stream_id: int) -> None:
        grant = decision.grant
        if grant is None:
            self._refuse(stream_id, decision.denial or PublishDenial.INVALID_KEY, decision.message)
            return
        try:
            stream = self._registry.start(grant, MediaProtocol.RTMP, self.client_addr)
        except AlreadyLiveError:
            self._refuse(
                stream_id, PublishDenial.ALREADY_LIVE, "stream is already live", grant.stream_id
            )
            return
        self.stream = stream
        self.phase = Phase.PUBLISHING
        limits = self._limits
        self._reader.set_limits(
            max_message_size=limits.max_message_bytes, max_buffered=limits.max_buffered_bytes
        )
        self._send(USER_CONTROL, commands.stream_begin(stream_id))
        self._send_command(
            commands.on_status("status", "NetStream.Publish.Start", "publishing"), stream_id
        )
        logger.info("%s: publishing stream %s", self._prefix, grant.stream_id)
        assert self._feed is not None
        self._feed.attach(stream)
        if self._transport is not None:
            self._read_batching = ReadBatching(self._transport.get_extra_info("socket"))

    def _distrust(self) -> None:
        """Back to the unauthorized regime (a publish ended; the connection stays)."""
        self._unauthorized_from = self._received
        self._unauthorized_messages = 0
        limits = self._limits
        self._reader.set_limits(
            max_message_size=limits.unauthorized_max_message_bytes,
            max_buffered=limits.unauthorized_max_bytes,
        )

    def _refuse(
        self, stream_id: int, denial: PublishDenial, message: str, engine_stream_id: str = ""
    ) -> None:
        try:
            self._hooks.emit(
                PublishDenied(
                    stream_id=engine_stream_id,
                    occurred_at=time.time(),
                    protocol=MediaProtocol.RTMP,
                    client_addr=self.client_addr,
                    reason=denial.value,
                    message=message,
                )
            )
        except Exception:
            logger.exception("%s: emit hook failed", self._prefix)
        code = DENIAL_STATUS.get(denial, "NetStream.Publish.Denied")
        self._send_command(commands.on_status("error", code, message or denial.value), stream_id)
        self._close(
            f"publish refused: {denial.value}" + (f" ({message})" if message else ""),
            "publisher_stopped",
            graceful=True,
        )
