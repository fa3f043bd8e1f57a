"""The chunk stream reader and writer, byte by byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.protocols.rtmp.chunks import (
    AUDIO,
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.protocols.rtmp.errors import RtmpProtocolError


def fmt0(csid: int, timestamp: int, length: int, type_id: int, stream_id: int) -> bytes:
    ts = min(timestamp, 0xFFFFFF)
    header = bytes([csid]) + ts.to_bytes(3, "big") + length.to_bytes(3, "big")
    header += bytes([type_id]) + stream_id.to_bytes(4, "little")
    if timestamp >= 0xFFFFFF:
        header += timestamp.to_bytes(4, "big")
    return header


def test_single_chunk_message_with_a_full_header() -> None:
    reader = ChunkReader()
    data = fmt0(3, 1000, 5, COMMAND_AMF0, 0) + b"hello"
    [message] = reader.feed(data)
    assert (message.type_id, message.stream_id, message.timestamp, message.payload) == (
        COMMAND_AMF0,
        0,
        1000,
        b"hello",
    )
    assert message.csid == 3


def test_message_split_over_chunks_of_the_default_size() -> None:
    payload = bytes(range(256)) + bytes(44)
    data = fmt0(4, 0, len(payload), VIDEO, 1) + payload[:128]
    data += bytes([0xC4]) + payload[128:256] + bytes([0xC4]) + payload[256:]
    reader = ChunkReader()
    assert [m.payload for m in reader.feed(data)] == [payload]


def test_every_byte_fed_alone_gives_the_same_messages() -> None:
    payload = b"x" * 300
    data = fmt0(4, 40, len(payload), VIDEO, 1) + payload[:128] + b"\xc4" + payload[128:256]
    data += b"\xc4" + payload[256:] + fmt0(5, 7, 3, AUDIO, 1) + b"abc"
    reader = ChunkReader()
    messages: list[RtmpMessage] = []
    for byte in data:
        messages += reader.feed(bytes([byte]))
    assert [(m.type_id, m.payload) for m in messages] == [(VIDEO, payload), (AUDIO, b"abc")]


def test_fmt1_fmt2_and_fmt3_headers_accumulate_timestamp_deltas() -> None:
    reader = ChunkReader()
    data = fmt0(6, 100, 2, AUDIO, 1) + b"aa"
    data += bytes([0x40 | 6]) + (20).to_bytes(3, "big") + (3).to_bytes(3, "big")
    data += bytes([AUDIO]) + b"bbb"  # fmt 1: delta 20, new length
    data += bytes([0x80 | 6]) + (30).to_bytes(3, "big") + b"ccc"  # fmt 2: delta 30
    data += bytes([0xC0 | 6]) + b"ddd"  # fmt 3: same delta again
    messages = reader.feed(data)
    assert [(m.timestamp, m.payload) for m in messages] == [
        (100, b"aa"),
        (120, b"bbb"),
        (150, b"ccc"),
        (180, b"ddd"),
    ]


def test_messages_interleave_across_chunk_streams() -> None:
    video, audio = b"V" * 200, b"A" * 150
    data = fmt0(4, 0, len(video), VIDEO, 1) + video[:128]
    data += fmt0(5, 0, len(audio), AUDIO, 1) + audio[:128]
    data += b"\xc4" + video[128:] + b"\xc5" + audio[128:]
    assert [m.payload for m in ChunkReader().feed(data)] == [video, audio]


def test_extended_timestamps_including_on_continuation_chunks() -> None:
    payload = b"z" * 200
    big = 0x01000000 + 5
    data = fmt0(4, big, len(payload), VIDEO, 1) + payload[:128]
    data += b"\xc4" + big.to_bytes(4, "big") + payload[128:]
    [message] = ChunkReader().feed(data)
    assert message.timestamp == big
    assert message.payload == payload


def test_two_and_three_byte_chunk_stream_ids() -> None:
    data = bytes([0]) + bytes([10]) + (0).to_bytes(3, "big") + (1).to_bytes(3, "big")
    data += bytes([AUDIO]) + (1).to_bytes(4, "little") + b"x"
    data += bytes([1, 0x10, 0x01]) + (0).to_bytes(3, "big") + (1).to_bytes(3, "big")
    data += bytes([AUDIO]) + (1).to_bytes(4, "little") + b"y"
    messages = ChunkReader().feed(data)
    assert [(m.csid, m.payload) for m in messages] == [(74, b"x"), (0x110 + 64, b"y")]


def test_set_chunk_size_applies_to_the_chunks_that_follow_at_once() -> None:
    payload = b"p" * 1000
    data = fmt0(2, 0, 4, SET_CHUNK_SIZE, 0) + struct.pack(">I", 4096)
    data += fmt0(4, 0, len(payload), VIDEO, 1) + payload
    reader = ChunkReader()
    messages = reader.feed(data)
    assert reader.chunk_size == 4096
    assert messages[-1].payload == payload


@pytest.mark.parametrize("size", [0, 0x80000000, 0xFFFFFFFF])
def test_invalid_chunk_sizes_are_protocol_errors(size: int) -> None:
    data = fmt0(2, 0, 4, SET_CHUNK_SIZE, 0) + struct.pack(">I", size)
    with pytest.raises(RtmpProtocolError):
        ChunkReader().feed(data)


def test_abort_discards_a_partial_message() -> None:
    payload = b"q" * 200
    data = fmt0(4, 0, len(payload), VIDEO, 1) + payload[:128]
    data += fmt0(2, 0, 4, 2, 0) + struct.pack(">I", 4)  # Abort chunk stream 4
    data += fmt0(4, 0, 3, VIDEO, 1) + b"new"
    messages = ChunkReader().feed(data)
    assert [m.payload for m in messages if m.type_id == VIDEO] == [b"new"]


def test_a_first_chunk_without_a_full_header_is_an_error() -> None:
    with pytest.raises(RtmpProtocolError):
        ChunkReader().feed(bytes([0xC4]) + b"abc")


def test_oversized_messages_are_refused_before_buffering() -> None:
    reader = ChunkReader(max_message_size=1000)
    with pytest.raises(RtmpProtocolError):
        reader.feed(fmt0(4, 0, 5000, VIDEO, 1) + b"x" * 128)


def test_too_many_partial_messages_are_refused() -> None:
    reader = ChunkReader(max_partial=2)
    data = b"".join(fmt0(4 + i, 0, 500, VIDEO, 1) + b"x" * 128 for i in range(3))
    with pytest.raises(RtmpProtocolError):
        reader.feed(data)


@pytest.mark.parametrize("size", [1, 128, 4096, 60000])
@pytest.mark.parametrize("timestamp", [0, 1234, 0xFFFFFF, 0xFFFFFFFF])
def test_writer_output_reads_back(size: int, timestamp: int) -> None:
    message = RtmpMessage(VIDEO, 1, timestamp, bytes(range(256)) * 40, csid=6)
    reader = ChunkReader()
    reader.chunk_size = size
    [back] = reader.feed(encode_message(message, size))
    assert (back.type_id, back.stream_id, back.timestamp, back.payload) == (
        VIDEO,
        1,
        timestamp,
        message.payload,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_bytes_only_ever_raise_protocol_errors(chunks: list[bytes]) -> None:
    reader = ChunkReader(max_message_size=64 * 1024, max_partial=4)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            assert reader.buffered <= 4 * 64 * 1024 + 64 * 1024
    except RtmpProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([AUDIO, VIDEO, COMMAND_AMF0]),
            st.integers(0, 0xFFFFFFFF),
            st.binary(max_size=2000),
        ),
        min_size=1,
        max_size=10,
    ),
    st.integers(1, 5000),
)
def test_any_written_sequence_reads_back(
    messages: list[tuple[int, int, bytes]], chunk_size: int
) -> None:
    data = b""
    for i, (type_id, ts, payload) in enumerate(messages):
        data += encode_message(RtmpMessage(type_id, 1, ts, payload, csid=4 + i % 3), chunk_size)
    reader = ChunkReader()
    reader.chunk_size = chunk_size
    back = reader.feed(data)
    assert [(m.type_id, m.timestamp, m.payload) for m in back] == messages
