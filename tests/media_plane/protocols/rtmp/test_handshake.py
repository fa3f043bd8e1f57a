from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.handshake import HANDSHAKE_SIZE, HandshakeState, ServerHandshake

C1 = bytes(range(256)) * 6
C2 = b"\xaa" * HANDSHAKE_SIZE


def fixed() -> ServerHandshake:
    return ServerHandshake(uptime_ms=lambda: 0x01020304, random=lambda n: b"\x55" * n)


def test_c0_c1_get_s0_s1_s2_and_c2_completes_it() -> None:
    handshake = fixed()
    reply, rest = handshake.feed(b"\x03" + C1)
    assert rest == b""
    assert reply[0] == 3
    s1, s2 = reply[1 : 1 + HANDSHAKE_SIZE], reply[1 + HANDSHAKE_SIZE :]
    assert s1[:8] == b"\x01\x02\x03\x04\x00\x00\x00\x00"  # time, then zero: simple form
    assert s1[8:] == b"\x55" * (HANDSHAKE_SIZE - 8)
    assert s2 == C1  # S2 echoes C1
    assert handshake.state is HandshakeState.WAIT_C2
    assert handshake.feed(C2) == (b"", b"")
    assert handshake.done


def test_bytes_after_c2_are_handed_back_for_the_chunk_stream() -> None:
    handshake = fixed()
    reply, rest = handshake.feed(b"\x03" + C1 + C2 + b"\x02chunks")
    assert len(reply) == 1 + 2 * HANDSHAKE_SIZE
    assert rest == b"\x02chunks"
    assert handshake.done
    assert handshake.feed(b"more") == (b"", b"more")


def test_the_handshake_fed_one_byte_at_a_time() -> None:
    handshake = fixed()
    replies = b""
    for byte in b"\x03" + C1 + C2:
        reply, rest = handshake.feed(bytes([byte]))
        replies += reply
        assert rest == b""
    assert handshake.done
    assert len(replies) == 1 + 2 * HANDSHAKE_SIZE


@pytest.mark.parametrize("version", [0, 6, 0x47, 0xFF])
def test_versions_other_than_3_are_refused_at_the_first_byte(version: int) -> None:
    with pytest.raises(RtmpProtocolError, match="version"):
        ServerHandshake().feed(bytes([version]))


def test_a_truncated_handshake_only_waits() -> None:
    handshake = ServerHandshake()
    assert handshake.feed(b"\x03" + C1[:700]) == (b"", b"")
    assert handshake.state is HandshakeState.WAIT_C0C1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=2000), max_size=5))
def test_arbitrary_bytes_only_raise_protocol_errors(chunks: list[bytes]) -> None:
    handshake = ServerHandshake()
    try:
        for chunk in chunks:
            handshake.feed(chunk)
    except RtmpProtocolError:
        pass
