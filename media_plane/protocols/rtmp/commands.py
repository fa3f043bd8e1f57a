"""NetConnection and NetStream commands: how they are read and what we answer. Pure.

How a refused publish is reported in onStatus (level "error"; FFmpeg and OBS give up on
any error status):

    PublishDenial.INVALID_KEY       NetStream.Publish.BadName
    PublishDenial.ALREADY_LIVE      NetStream.Publish.BadName
    PublishDenial.STREAM_DISABLED   NetStream.Publish.Denied
    PublishDenial.TENANT_SUSPENDED  NetStream.Publish.Denied
    PublishDenial.QUOTA_EXCEEDED    NetStream.Publish.Denied
    PublishDenial.UNAVAILABLE       NetStream.Publish.Denied
    a play request                  NetStream.Play.Failed
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from media_plane.media.hooks import PublishDenial
from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.amf0 import AmfValue
from media_plane.protocols.rtmp.errors import RtmpProtocolError

__all__ = [
    "DENIAL_STATUS",
    "Command",
    "acknowledgement",
    "connect_result",
    "on_fc_publish",
    "on_status",
    "parse_command",
    "publish_key",
    "result",
    "set_chunk_size",
    "set_peer_bandwidth",
    "stream_begin",
    "window_ack_size",
]

DENIAL_STATUS: dict[PublishDenial, str] = {
    PublishDenial.INVALID_KEY: "NetStream.Publish.BadName",
    PublishDenial.ALREADY_LIVE: "NetStream.Publish.BadName",
    PublishDenial.STREAM_DISABLED: "NetStream.Publish.Denied",
    PublishDenial.TENANT_SUSPENDED: "NetStream.Publish.Denied",
    PublishDenial.QUOTA_EXCEEDED: "NetStream.Publish.Denied",
    PublishDenial.UNAVAILABLE: "NetStream.Publish.Denied",
}

_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    transaction: float
    #: The values after the transaction id; the first is the command object (or null).
    args: list[AmfValue]
    #: The message stream the command came on (0 is the NetConnection).
    stream_id: int

    def arg_string(self, index: int) -> str:
        """The string argument at `index` of `args`, or "" when it is absent or not one."""
        value = self.args[index] if index < len(self.args) else None
        return value if isinstance(value, str) else ""


def parse_command(payload: bytes, stream_id: int, *, amf3: bool = False) -> Command:
    """An AMF0 command message (or an AMF3 one, which is a format byte and AMF0 values)."""
    values = amf0.decode_all(payload[1:] if amf3 else payload)
    if len(values) < 2 or not isinstance(values[0], str):
        raise RtmpProtocolError("malformed command message")
    transaction = values[1]
    if not isinstance(transaction, float):
        raise RtmpProtocolError(f"command {values[0]!r} without a transaction id")
    return Command(values[0], transaction, values[2:], stream_id)


def publish_key(name: str) -> str:
    """The stream key is the publish name without any query string."""
    return name.split("?", 1)[0].strip()


def connect_result(transaction: float) -> bytes:
    return amf0.encode(
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


def result(transaction: float, *values: AmfValue) -> bytes:
    return amf0.encode("_result", transaction, None, *values)


def on_status(level: str, code: str, description: str) -> bytes:
    return amf0.encode(
        "onStatus", 0.0, None, {"level": level, "code": code, "description": description}
    )


def on_fc_publish(code: str, description: str) -> bytes:
    return amf0.encode("onFCPublish", 0.0, None, {"code": code, "description": description})


def window_ack_size(size: int) -> bytes:
    return _U32.pack(size)


def set_peer_bandwidth(size: int, limit_type: int = 2) -> bytes:
    return _U32.pack(size) + bytes([limit_type])


def set_chunk_size(size: int) -> bytes:
    return _U32.pack(size)


def acknowledgement(received: int) -> bytes:
    return _U32.pack(received & 0xFFFFFFFF)


def stream_begin(stream_id: int) -> bytes:
    """User Control event 0 (Stream Begin)."""
    return struct.pack(">HI", 0, stream_id)
