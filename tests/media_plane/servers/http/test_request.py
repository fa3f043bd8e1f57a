"""The strict request-head parser, without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media_plane.servers.http.request import (
    MAX_HEAD_BYTES,
    BadRequestError,
    parse_request_head,
)


def test_parses_method_target_and_version() -> None:
    head = parse_request_head(b"GET /hls/a/index.m3u8?token=x HTTP/1.1\r\nHost: h")
    assert head.method == b"GET"
    assert head.target == b"/hls/a/index.m3u8?token=x"
    assert head.version == 1
    assert head.keep_alive
    assert not head.has_body


def test_header_names_are_case_insensitive_and_values_trimmed() -> None:
    head = parse_request_head(
        b"GET / HTTP/1.1\r\nhOsT: h\r\nAUTHORIZATION: \t Bearer abc \t\r\nUser-Agent: VLC/3.0"
    )
    assert head.authorization == b"Bearer abc"
    assert head.user_agent == b"VLC/3.0"


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Keep-Alive, Close", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
    ],
)
def test_keep_alive_follows_version_and_connection_header(
    version: bytes, connection: bytes | None, keep_alive: bool
) -> None:
    raw = b"GET / HTTP/" + version + b"\r\nHost: h"
    if connection is not None:
        raw += b"\r\nConnection: " + connection
    assert parse_request_head(raw).keep_alive is keep_alive


def test_http10_may_omit_host() -> None:
    assert parse_request_head(b"GET / HTTP/1.0").version == 0


def test_announced_body_is_flagged() -> None:
    assert parse_request_head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3").has_body
    assert not parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0").has_body


def test_options_asterisk_form_is_accepted_for_options_only() -> None:
    assert parse_request_head(b"OPTIONS * HTTP/1.1\r\nHost: h").target == b"*"
    with pytest.raises(BadRequestError):
        parse_request_head(b"GET * HTTP/1.1\r\nHost: h")


def test_too_many_fields_are_refused() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h" + b"\r\nX: 1" * 100
    with pytest.raises(BadRequestError) as caught:
        parse_request_head(raw)
    assert caught.value.status == 431


def test_oversized_head_is_refused() -> None:
    with pytest.raises(BadRequestError) as caught:
        parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * MAX_HEAD_BYTES)
    assert caught.value.status == 431


@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_raise_bad_request(data: bytes) -> None:
    try:
        head = parse_request_head(data)
    except BadRequestError as exc:
        assert exc.status in (400, 431, 505)
    else:
        assert head.target


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
        ),
        max_size=10,
    )
)
def test_well_formed_fields_always_parse(fields: list[tuple[str, str]]) -> None:
    lines = [f"{name}: {value}" for name, value in fields if name.lower() not in _FRAMING]
    raw = "\r\n".join(["GET /x HTTP/1.1", "Host: h", *lines]).encode()
    assert parse_request_head(raw).method == b"GET"


_FRAMING = {"host", "content-length", "transfer-encoding"}


def test_a_server_that_reads_bodies_frames_them_by_content_length_only() -> None:
    head = parse_request_head(
        b"POST /whip?x=1 HTTP/1.1\r\nHost: edge\r\nContent-Type: application/sdp; charset=x\r\n"
        b"Content-Length: 12\r\nAuthorization: Bearer k",
        max_body_bytes=64 * 1024,
    )
    assert (head.method, head.path, head.query) == (b"POST", "/whip", "x=1")
    assert head.content_type == b"application/sdp" and head.content_length == 12
    assert head.keep_alive and head.authorization == b"Bearer k"
    for bad, status in (
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked", 411),
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nContent-Length: 99999999", 413),
        (b"POST /whip HTTP/1.1\r\nContent-Length: 1", 400),
        (b"POST /whip HTTP/1.1\r\nHost: e\r\nContent-Length: 1\r\nContent-Length: 1", 400),
        (b"POST whip HTTP/1.1\r\nHost: e", 400),
    ):
        with pytest.raises(BadRequestError) as info:
            parse_request_head(bad, max_body_bytes=64 * 1024)
        assert info.value.status == status
