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


#: Said when no form yields a key, so a user learns what to type instead.
KEY_FORMS = (
    "publish to rtmp://<host>/live/<key>, or set Server rtmp://<host>/live and Stream Key "
    "<key>, or rtmp://<host>/live?key=<key>"
)


def publish_key(name: str, connect: Command | None = None) -> str:
    """The stream key a publisher means, from the publish name or, when that is empty, from
    the connect URL; "" when neither holds one.

    Forms seen in the field: the publish name (`rtmp://host/live/KEY`, what FFmpeg and a
    filled-in OBS Stream Key send), `?key=K` on the publish name or on the app
    (`rtmp://host/live?key=K`), and the key as the app's second path segment with an
    empty publish name (the whole URL pasted into OBS's Server box: app `live/KEY`). The
    publish name's own query string is never part of the key.
    """
    path, _, query = name.partition("?")
    if path.strip():
        return path.strip()
    if key := _query_key(query):
        return key
    if connect is None or not connect.args or not isinstance(connect.args[0], dict):
        return ""
    app = connect.args[0].get("app")
    tc_url = connect.args[0].get("tcUrl")
    if isinstance(app, str) and (key := _key_in_app(app)):
        return key
    if isinstance(tc_url, str):
        # tcUrl is rtmp://host[:port]/app[/instance][?query]; the app is what follows the host.
        _, _, after_scheme = tc_url.partition("://")
        return _key_in_app(after_scheme.partition("/")[2])
    return ""


def _key_in_app(app: str) -> str:
    path, _, query = app.partition("?")
    if key := _query_key(query):
        return key
    segments = [segment for segment in path.split("/") if segment.strip()]
    return segments[-1].strip() if len(segments) >= 2 else ""


def _query_key(query: str) -> str:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "key" and value.strip():
            return value.strip()
    return ""


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
