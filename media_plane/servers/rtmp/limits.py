"""What one RTMP client may cost the server: time, connection slots, bytes, messages and
event-loop turns. Each limit is declared here once; the engine's settings carry one
`RtmpLimits` (EDGE_RTMP__<NAME> in the sidecar's environment).

Two regimes. Until a publish is authorized a connection is nobody: it gets a short
deadline, a small budget of bytes and messages, and small messages (commands are
small). Once authorized it may send what a sane video stream needs. Whatever the regime,
one read is parsed at most `chunks_per_turn` chunks at a time before the loop runs
everyone else, and connections that never authorized are the first dropped when
connection slots or buffer memory run out.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RtmpLimits"]

_KIB = 1024
_MIB = 1024 * 1024


class RtmpLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Open connections at most; beyond, the oldest unauthorized one makes room (or the
    #: new one is refused when every slot is publishing).
    max_connections: int = Field(default=1000, ge=1)
    #: Open connections per client IP address; beyond, that address's oldest
    #: unauthorized connection makes room (or the new one is refused).
    max_connections_per_address: int = Field(default=16, ge=1)
    #: The handshake (C0, C1, C2: 3,073 bytes) must be done by then.
    handshake_timeout_s: float = Field(default=5.0, gt=0)
    #: A connection that sends nothing for this long is dropped.
    idle_timeout_s: float = Field(default=30.0, gt=0)
    #: A connection without a publish (nor one being authorized) for this long is dropped.
    publish_timeout_s: float = Field(default=10.0, gt=0)
    #: Bytes a connection may send, after the handshake, until a publish is authorized.
    unauthorized_max_bytes: int = Field(default=128 * _KIB, ge=1)
    #: Messages a connection may send until a publish is authorized (FFmpeg and OBS
    #: send about ten).
    unauthorized_max_messages: int = Field(default=200, ge=1)
    #: Largest message a connection may declare until a publish is authorized.
    unauthorized_max_message_bytes: int = Field(default=64 * _KIB, ge=1)
    #: Largest message an authorized publisher may declare (a video frame).
    max_message_bytes: int = Field(default=8 * _MIB, ge=1, le=0xFFFFFF)
    #: Messages one connection may have half-assembled at once.
    max_partial_messages: int = Field(default=8, ge=1)
    #: Bytes one connection's half-assembled messages may hold together.
    max_buffered_bytes: int = Field(default=16 * _MIB, ge=1)
    #: Bytes all connections' half-assembled messages may hold together; beyond, the
    #: oldest unauthorized connections holding some are dropped, then the one over it.
    max_total_buffered_bytes: int = Field(default=256 * _MIB, ge=1)
    #: Chunks parsed from one connection before the event loop serves everyone else.
    chunks_per_turn: int = Field(default=1024, ge=1)
    #: Replies queued to a peer that does not read them; beyond, it is dropped.
    max_write_buffer_bytes: int = Field(default=256 * _KIB, ge=1)

    @model_validator(mode="after")
    def _unauthorized_is_smaller(self) -> RtmpLimits:
        if self.unauthorized_max_message_bytes > self.max_message_bytes:
            raise ValueError("unauthorized_max_message_bytes exceeds max_message_bytes")
        if self.max_buffered_bytes > self.max_total_buffered_bytes:
            raise ValueError("max_buffered_bytes exceeds max_total_buffered_bytes")
        return self
