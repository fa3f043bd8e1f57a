"""One RTMP connection: handshake, commands, and a publish feeding the engine."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, cast

from media_plane.engine.hooks import (
    EngineEvent,
    EngineEventKind,
    EngineHooks,
    PublishDenial,
)
from media_plane.engine.live_stream import AlreadyLiveError, LiveStream, StreamRegistry
from media_plane.media import AudioTrack, MediaPacket, VideoTrack
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.chunks import (
    ACKNOWLEDGEMENT,
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DATA_AMF0,
    SET_CHUNK_SIZE,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.flv import AudioConfig, VideoConfig, parse_audio, parse_video
from media_plane.protocols.rtmp.handshake import ServerHandshake

logger = logging.getLogger(__name__)

OUT_CHUNK_SIZE = 4096
WINDOW_SIZE = 2_500_000
MAX_BUFFERED = 32 * 1024 * 1024
_STREAM_ID = 1

#: How each denial is reported to the broadcaster in onStatus.
DENIAL_STATUS = {
    PublishDenial.INVALID_KEY: "NetStream.Publish.BadName",
    PublishDenial.ALREADY_LIVE: "NetStream.Publish.BadName",
    PublishDenial.STREAM_DISABLED: "NetStream.Publish.Denied",
    PublishDenial.TENANT_SUSPENDED: "NetStream.Publish.Denied",
    PublishDenial.QUOTA_EXCEEDED: "NetStream.Publish.Denied",
    PublishDenial.UNAVAILABLE: "NetStream.Publish.Denied",
}


def publish_key(name: str) -> str:
    """The stream key is the publish name without any query string."""
    return name.split("?", 1)[0].strip()


class RtmpSession(asyncio.Protocol):
    def __init__(
        self,
        registry: StreamRegistry,
        hooks: EngineHooks,
        spawn: Callable[[Any], asyncio.Task[None]],
        on_close: Callable[[RtmpSession], None],
    ) -> None:
        self._registry = registry
        self._hooks = hooks
        self._spawn = spawn
        self._on_close = on_close
        self._transport: asyncio.Transport | None = None
        self._handshake = ServerHandshake()
        self._reader = ChunkReader(max_message_size=8 * 1024 * 1024, max_partial=8)
        self.client_addr = "unknown"
        self.opened_at = time.monotonic()
        self.last_data_at = self.opened_at
        self._received = 0
        self._acked = 0
        self._ack_window = 0
        self._authorizing = False
        self.stream: LiveStream | None = None
        self._video: VideoTrack | None = None
        self._audio: AudioTrack | None = None
        self._tracks_sent = False
        self._closing = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both stream sockets.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client_addr = f"{peer[0]}:{peer[1]}"

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.last_data_at = time.monotonic()
        try:
            if not self._handshake.done:
                reply, data = self._handshake.feed(data)
                if reply:
                    self._write(reply)
                if not self._handshake.done or not data:
                    return
            self._received += len(data)
            for message in self._reader.feed(data):
                self._handle(message)
                if self._closing:
                    return
            if self._reader.buffered > MAX_BUFFERED:
                raise RtmpProtocolError("too much unassembled data")
            self._maybe_ack()
        except RtmpProtocolError as exc:
            self.drop(f"protocol error: {exc}", reason="protocol_error")

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self.stream is not None:
            self._registry.finish(self.stream, "publisher_lost")
            self.stream = None
        self._on_close(self)

    # -- control ----------------------------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    def drop(self, why: str, *, reason: str = "publisher_lost") -> None:
        """Closes this connection only, ending its publish if it had one."""
        if self._closing:
            return
        logger.info("rtmp %s: dropping connection: %s", self.client_addr, why)
        self._closing = True
        if self.stream is not None:
            self._registry.finish(self.stream, reason)
            self.stream = None
        if self._transport is not None:
            self._transport.abort()

    def _close_after_reply(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _send(self, type_id: int, payload: bytes, *, csid: int = 2, stream_id: int = 0) -> None:
        message = RtmpMessage(type_id, stream_id, 0, payload, csid)
        self._write(encode_message(message, OUT_CHUNK_SIZE))

    def _command(self, *values: Any, stream_id: int = 0) -> None:
        self._send(
            COMMAND_AMF0, amf0.encode(*values), csid=3 if stream_id == 0 else 5, stream_id=stream_id
        )

    def _maybe_ack(self) -> None:
        if self._ack_window and self._received - self._acked >= self._ack_window:
            self._acked = self._received
            self._send(ACKNOWLEDGEMENT, struct.pack(">I", self._received & 0xFFFFFFFF))

    # -- messages ---------------------------------------------------------------------

    def _handle(self, message: RtmpMessage) -> None:
        type_id = message.type_id
        if type_id == VIDEO:
            self._media(parse_video, message)
        elif type_id == AUDIO:
            self._media(parse_audio, message)
        elif type_id == COMMAND_AMF0:
            self._on_command(amf0.decode_all(message.payload), message.stream_id)
        elif type_id == COMMAND_AMF3:
            # AMF3 command messages start with a format byte, then AMF0 values.
            self._on_command(amf0.decode_all(message.payload[1:]), message.stream_id)
        elif type_id == WINDOW_ACK_SIZE:
            if len(message.payload) >= 4:
                self._ack_window = struct.unpack(">I", message.payload[:4])[0]
        # Data messages (onMetaData), user control, peer bandwidth, acks: nothing to do.
        elif type_id not in (
            DATA_AMF0,
            USER_CONTROL,
            SET_PEER_BANDWIDTH,
            ACKNOWLEDGEMENT,
            SET_CHUNK_SIZE,
            2,
            15,
            16,
            22,
        ):
            logger.debug("rtmp %s: ignoring message type %d", self.client_addr, type_id)

    def _media(self, parse: Callable[[bytes, int], object], message: RtmpMessage) -> None:
        stream = self.stream
        if stream is None:
            return  # media before publish was granted is dropped
        parsed = parse(message.payload, message.timestamp)
        if isinstance(parsed, MediaPacket):
            if not self._tracks_sent:
                self._tracks_sent = True
                stream.set_tracks(self._video, self._audio)
            stream.push(parsed)
        elif isinstance(parsed, VideoConfig):
            self._video = parsed.track
            self._tracks_changed(stream)
        elif isinstance(parsed, AudioConfig):
            self._audio = parsed.track
            self._tracks_changed(stream)

    def _tracks_changed(self, stream: LiveStream) -> None:
        # Announce once both configurations are known, or again when one changes later.
        if self._tracks_sent or (self._video is not None and self._audio is not None):
            self._tracks_sent = True
            stream.set_tracks(self._video, self._audio)

    def _on_command(self, values: list[Any], stream_id: int) -> None:
        if len(values) < 2 or not isinstance(values[0], str):
            raise RtmpProtocolError("malformed command")
        name, transaction = values[0], values[1]
        args = values[2:]
        if name == "connect":
            self._on_connect(transaction)
        elif name == "createStream":
            self._command("_result", transaction, None, float(_STREAM_ID))
        elif name in ("releaseStream", "FCPublish"):
            if name == "FCPublish":
                self._command(
                    "onFCPublish",
                    0.0,
                    None,
                    {"code": "NetStream.Publish.Start", "description": "FCPublish"},
                )
            else:
                self._command("_result", transaction, None)
        elif name == "publish":
            raw_name = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            self._on_publish(publish_key(raw_name), stream_id or _STREAM_ID)
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            self._end_publish()
        elif name in ("play", "play2"):
            self._status(
                stream_id or _STREAM_ID,
                "error",
                "NetStream.Play.Failed",
                "playback over RTMP is not offered; use HLS or WebRTC",
            )
            self._close_after_reply()
        elif name == "getStreamLength":
            self._command("_result", transaction, None, 0.0)

    def _on_connect(self, transaction: Any) -> None:
        self._send(WINDOW_ACK_SIZE, struct.pack(">I", WINDOW_SIZE))
        self._send(SET_PEER_BANDWIDTH, struct.pack(">IB", WINDOW_SIZE, 2))
        self._send(SET_CHUNK_SIZE, struct.pack(">I", OUT_CHUNK_SIZE))
        self._command(
            "_result",
            transaction,
            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
            {
                "level": "status",
                "code": "NetConnection.Connect.Success",
                "description": "Connection succeeded.",
                "objectEncoding": 0.0,
            },
        )

    def _status(self, stream_id: int, level: str, code: str, description: str) -> None:
        self._command(
            "onStatus",
            0.0,
            None,
            {"level": level, "code": code, "description": description},
            stream_id=stream_id,
        )

    def _on_publish(self, key: str, stream_id: int) -> None:
        if self.stream is not None or self._authorizing:
            raise RtmpProtocolError("publish while already publishing")
        if not key:
            self._refuse(stream_id, PublishDenial.INVALID_KEY, "empty stream key")
            return
        self._authorizing = True
        self._spawn(self._authorize(key, stream_id))

    async def _authorize(self, key: str, stream_id: int) -> None:
        try:
            decision = await self._hooks.authorize_publish(key, "rtmp", self.client_addr)
        except Exception:
            logger.exception("rtmp %s: authorize_publish failed", self.client_addr)
            self._refuse(stream_id, PublishDenial.UNAVAILABLE, "authorization failed")
            return
        finally:
            self._authorizing = False
        if self._closing:
            return
        if decision.grant is None:
            self._refuse(stream_id, decision.denial or PublishDenial.INVALID_KEY, decision.message)
            return
        try:
            self.stream = self._registry.start(decision.grant, "rtmp", self.client_addr)
        except AlreadyLiveError:
            self._refuse(stream_id, PublishDenial.ALREADY_LIVE, "stream is already live")
            return
        self._send(USER_CONTROL, struct.pack(">HI", 0, stream_id))  # StreamBegin
        self._status(stream_id, "status", "NetStream.Publish.Start", "publishing")
        logger.info("rtmp %s: publishing stream %s", self.client_addr, decision.grant.stream_id)

    def _refuse(self, stream_id: int, denial: PublishDenial, message: str) -> None:
        logger.info("rtmp %s: publish refused (%s)", self.client_addr, denial.value)
        self._emit_denial(denial)
        self._status(
            stream_id,
            "error",
            DENIAL_STATUS.get(denial, "NetStream.Publish.Denied"),
            message or denial.value,
        )
        self._close_after_reply()

    def _emit_denial(self, denial: PublishDenial) -> None:
        try:
            self._hooks.emit(
                EngineEvent(
                    EngineEventKind.PUBLISH_DENIED,
                    "",
                    time.time(),
                    {"reason": denial.value, "protocol": "rtmp"},
                )
            )
        except Exception:
            logger.exception("emit hook failed")

    def _end_publish(self) -> None:
        if self.stream is not None:
            self._registry.finish(self.stream, "publisher_stopped")
            self.stream = None
