from __future__ import annotations

import pytest

from media_plane.media.hooks import PublishDenial
from media_plane.protocols.rtmp import amf0, commands
from media_plane.protocols.rtmp.errors import RtmpProtocolError


def test_a_publish_command_is_parsed_with_its_arguments() -> None:
    payload = amf0.encode("publish", 5.0, None, "key?token=1", "live")
    command = commands.parse_command(payload, 1)
    assert (command.name, command.transaction, command.stream_id) == ("publish", 5.0, 1)
    assert command.arg_string(1) == "key?token=1"
    assert command.arg_string(0) == ""  # null, not a string
    assert command.arg_string(9) == ""


def test_amf3_command_messages_are_a_format_byte_and_amf0_values() -> None:
    payload = b"\x00" + amf0.encode("createStream", 2.0, None)
    assert commands.parse_command(payload, 0, amf3=True).name == "createStream"


@pytest.mark.parametrize(
    "values",
    [[], ["connect"], [1.0, 2.0], ["connect", "not a number"]],
)
def test_malformed_commands_are_protocol_errors(values: list[amf0.AmfValue]) -> None:
    with pytest.raises(RtmpProtocolError):
        commands.parse_command(amf0.encode(*values), 0)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("abc123", "abc123"),
        ("abc123?token=xyz&x=1", "abc123"),
        (" abc123 ", "abc123"),
        ("?only=query", ""),
        ("", ""),
    ],
)
def test_the_stream_key_is_the_publish_name_without_its_query(name: str, key: str) -> None:
    assert commands.publish_key(name) == key


def test_every_denial_has_a_status_code() -> None:
    assert set(commands.DENIAL_STATUS) == set(PublishDenial)
    assert commands.DENIAL_STATUS[PublishDenial.INVALID_KEY] == "NetStream.Publish.BadName"
    assert commands.DENIAL_STATUS[PublishDenial.ALREADY_LIVE] == "NetStream.Publish.BadName"
    assert commands.DENIAL_STATUS[PublishDenial.QUOTA_EXCEEDED] == "NetStream.Publish.Denied"


def test_status_and_result_replies() -> None:
    assert amf0.decode_all(commands.on_status("error", "X.Y", "why")) == [
        "onStatus",
        0.0,
        None,
        {"level": "error", "code": "X.Y", "description": "why"},
    ]
    assert amf0.decode_all(commands.result(4.0, 1.0)) == ["_result", 4.0, None, 1.0]
    connect = amf0.decode_all(commands.connect_result(1.0))
    assert connect[0:2] == ["_result", 1.0]
    assert isinstance(connect[3], dict) and connect[3]["code"] == "NetConnection.Connect.Success"
    assert commands.stream_begin(1) == b"\x00\x00\x00\x00\x00\x01"
    assert commands.acknowledgement(2**32 + 5) == b"\x00\x00\x00\x05"
    assert commands.set_peer_bandwidth(2_500_000) == b"\x00\x26\x25\xa0\x02"


def _connect(app: str | None, tc_url: str | None = None) -> commands.Command:
    params: dict[str, amf0.AmfValue] = {}
    if app is not None:
        params["app"] = app
    if tc_url is not None:
        params["tcUrl"] = tc_url
    return commands.Command("connect", 1.0, [params], 0)


@pytest.mark.parametrize(
    ("name", "connect", "key"),
    [
        # The publish name wins whatever the connect URL says.
        ("abc", _connect("live/other"), "abc"),
        ("abc?key=other", _connect("live?key=other"), "abc"),
        # rtmp://host/live?key=K: FFmpeg sends the query on the app and an empty name.
        ("", _connect("live?key=K", "rtmp://h/live?key=K"), "K"),
        ("", _connect("live?x=1&key=K"), "K"),
        # rtmp://host/live/?key=K: the query on the publish name.
        ("?key=K", _connect("live"), "K"),
        # The whole URL pasted as OBS's Server with no Stream Key: app live/KEY.
        ("", _connect("live/KEY", "rtmp://h/live/KEY"), "KEY"),
        ("", _connect("live/KEY/"), "KEY"),
        # No app, the key in tcUrl's path.
        ("", _connect(None, "rtmp://h:1935/live/KEY"), "KEY"),
        # Nothing anywhere.
        ("", _connect("live", "rtmp://h/live"), ""),
        ("", _connect("live?key="), ""),
        ("", None, ""),
        ("", commands.Command("connect", 1.0, [], 0), ""),
    ],
)
def test_the_key_comes_from_the_connect_url_when_the_publish_name_is_empty(
    name: str, connect: commands.Command | None, key: str
) -> None:
    assert commands.publish_key(name, connect) == key
