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
