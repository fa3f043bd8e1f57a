"""The chunk stream reader and writer, byte by byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.protocols.rtmp.chunks import (
    ABORT,
    AUDIO,
    COMMAND_AMF0,
    DATA_AMF0,
    PART_COST,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    RtmpMessage,
    encode_message,
)
from media_plane.protocols.rtmp.errors import RtmpProtocolError


def basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1]) + (csid - 64).to_bytes(2, "little")


def ts_field(value: int) -> bytes:
    return min(value, 0xFFFFFF).to_bytes(3, "big")


def ext(value: int) -> bytes:
    return value.to_bytes(4, "big") if value >= 0xFFFFFF else b""


def fmt0(csid: int, timestamp: int, length: int, type_id: int, stream_id: int) -> bytes:
    return (
        basic(0, csid)
        + ts_field(timestamp)
        + length.to_bytes(3, "big")
        + bytes([type_id])
        + stream_id.to_bytes(4, "little")
        + ext(timestamp)
    )


def fmt1(csid: int, delta: int, length: int, type_id: int) -> bytes:
    header = basic(1, csid) + ts_field(delta) + length.to_bytes(3, "big") + bytes([type_id])
    return header + ext(delta)


def fmt2(csid: int, delta: int) -> bytes:
    return basic(2, csid) + ts_field(delta) + ext(delta)


def control(type_id: int, value: int) -> bytes:
    return fmt0(2, 0, 4, type_id, 0) + struct.pack(">I", value)


def summary(messages: list[RtmpMessage]) -> list[tuple[int, int, int, bytes]]:
    return [(m.type_id, m.stream_id, m.timestamp, m.payload) for m in messages]


def test_a_single_chunk_message_with_a_full_header() -> None:
    [message] = ChunkReader().feed(fmt0(3, 1000, 5, COMMAND_AMF0, 0) + b"hello")
    assert summary([message]) == [(COMMAND_AMF0, 0, 1000, b"hello")]
    assert message.csid == 3


def test_a_message_split_over_chunks_of_the_default_size() -> None:
    payload = bytes(range(256)) + bytes(44)
    data = fmt0(4, 0, len(payload), VIDEO, 1) + payload[:128]
    data += basic(3, 4) + payload[128:256] + basic(3, 4) + payload[256:]
    assert [m.payload for m in ChunkReader().feed(data)] == [payload]


def test_every_byte_fed_alone_gives_the_same_messages() -> None:
    payload = b"x" * 300
    big = 0x01000000
    data = fmt0(4, big, len(payload), VIDEO, 1) + payload[:128]
    data += basic(3, 4) + ext(big) + payload[128:256] + basic(3, 4) + ext(big) + payload[256:]
    data += fmt0(300, 7, 3, AUDIO, 1) + b"abc" + fmt2(300, 5) + b"def"
    reader = ChunkReader()
    messages: list[RtmpMessage] = []
    for byte in data:
        messages += reader.feed(bytes([byte]))
        # Fed a byte at a time, each stored part is one byte, counted as PART_COST.
        assert reader.buffered <= len(payload) * PART_COST + 17
    assert summary(messages) == [
        (VIDEO, 1, big, payload),
        (AUDIO, 1, 7, b"abc"),
        (AUDIO, 1, 12, b"def"),
    ]
    assert reader.buffered == 0


def test_fmt1_fmt2_and_fmt3_headers_accumulate_timestamp_deltas() -> None:
    data = fmt0(6, 100, 2, AUDIO, 1) + b"aa"
    data += fmt1(6, 20, 3, AUDIO) + b"bbb"  # delta 20, new length
    data += fmt2(6, 30) + b"ccc"  # delta 30, same length
    data += basic(3, 6) + b"ddd"  # the same delta again
    assert [(m.timestamp, m.payload) for m in ChunkReader().feed(data)] == [
        (100, b"aa"),
        (120, b"bbb"),
        (150, b"ccc"),
        (180, b"ddd"),
    ]


def test_fmt3_right_after_fmt0_reuses_its_timestamp_as_the_delta() -> None:
    # What FFmpeg's reader does: the last timestamp field, absolute or not, is the delta.
    data = fmt0(6, 40, 1, AUDIO, 1) + b"a" + basic(3, 6) + b"b"
    assert [m.timestamp for m in ChunkReader().feed(data)] == [40, 80]


def test_timestamps_wrap_at_32_bits() -> None:
    data = fmt0(6, 0xFFFFFFF0, 1, AUDIO, 1) + b"a" + fmt2(6, 0x20) + b"b"
    assert [m.timestamp for m in ChunkReader().feed(data)] == [0xFFFFFFF0, 0x10]


def test_messages_interleave_across_chunk_streams() -> None:
    video, audio = b"V" * 200, b"A" * 150
    data = fmt0(4, 0, len(video), VIDEO, 1) + video[:128]
    data += fmt0(5, 0, len(audio), AUDIO, 1) + audio[:128]
    data += control(SET_CHUNK_SIZE, 4096)  # applies to the next chunks of both
    data += basic(3, 4) + video[128:] + basic(3, 5) + audio[128:]
    reader = ChunkReader()
    assert [m.payload for m in reader.feed(data) if m.type_id != SET_CHUNK_SIZE] == [video, audio]


def test_extended_timestamp_on_fmt0_and_on_its_continuation_chunks() -> None:
    payload = b"z" * 300
    big = 0x01000000 + 5
    data = fmt0(4, big, len(payload), VIDEO, 1) + payload[:128]
    data += basic(3, 4) + ext(big) + payload[128:256] + basic(3, 4) + ext(big) + payload[256:]
    [message] = ChunkReader().feed(data)
    assert (message.timestamp, message.payload) == (big, payload)


def test_extended_delta_on_fmt1_and_its_continuation() -> None:
    # FFmpeg: sequence header at 0, then the first frame 16,777,867 ms later.
    delta = 16_777_867
    frame = b"f" * 200
    data = fmt0(6, 0, 3, VIDEO, 1) + b"cfg"
    data += fmt1(6, delta, len(frame), VIDEO) + frame[:128] + basic(3, 6) + ext(delta)
    data += frame[128:]
    data += fmt2(6, 66) + b"n" * 128 + basic(3, 6) + b"n" * 72
    messages = ChunkReader().feed(data)
    assert [(m.timestamp, len(m.payload)) for m in messages] == [
        (0, 3),
        (delta, 200),
        (delta + 66, 200),
    ]
    assert messages[1].payload == frame


def test_fmt3_starting_a_message_reads_its_extended_value_as_the_new_delta() -> None:
    # FFmpeg picks type 3 when the 24-bit fields match (both 0xFFFFFF), even though the
    # 32-bit deltas differ; the value after the header is the one that counts.
    first, second = 0x01000000, 0x01000010
    data = fmt0(6, 0, 1, AUDIO, 1) + b"a"
    data += fmt2(6, first) + b"b"
    data += basic(3, 6) + ext(second) + b"c"
    assert [m.timestamp for m in ChunkReader().feed(data)] == [0, first, first + second]


def test_continuation_chunks_without_the_extended_value_are_accepted() -> None:
    # Some encoders leave it out; the four bytes are payload unless they repeat it.
    big = 0x02000000
    payload = b"q" * 200
    data = fmt0(4, big, len(payload), VIDEO, 1) + payload[:128] + basic(3, 4) + payload[128:]
    [message] = ChunkReader().feed(data)
    assert (message.timestamp, message.payload) == (big, payload)


@pytest.mark.parametrize("csid", [2, 63, 64, 319, 320, 65599])
def test_one_two_and_three_byte_chunk_stream_ids(csid: int) -> None:
    payload = bytes(range(200))
    written = encode_message(RtmpMessage(AUDIO, 1, 5, payload, csid=csid), 128)
    assert written.startswith(basic(0, csid))
    [message] = ChunkReader().feed(written)
    assert (message.csid, message.payload) == (csid, payload)


def test_set_chunk_size_applies_to_the_chunks_that_follow_at_once() -> None:
    payload = b"p" * 1000
    data = control(SET_CHUNK_SIZE, 4096) + fmt0(4, 0, len(payload), VIDEO, 1) + payload
    reader = ChunkReader()
    messages = reader.feed(data)
    assert reader.chunk_size == 4096
    assert messages[-1].payload == payload


def test_the_largest_chunk_size_is_accepted() -> None:
    payload = b"L" * 70_000
    data = control(SET_CHUNK_SIZE, 0x7FFFFFFF) + fmt0(4, 0, len(payload), VIDEO, 1) + payload
    reader = ChunkReader()
    assert reader.feed(data)[-1].payload == payload
    assert reader.chunk_size == 0x7FFFFFFF


@pytest.mark.parametrize("size", [0, 0x80000000, 0xFFFFFFFF])
def test_invalid_chunk_sizes_are_protocol_errors(size: int) -> None:
    with pytest.raises(RtmpProtocolError, match="invalid chunk size"):
        ChunkReader().feed(control(SET_CHUNK_SIZE, size))


def test_short_control_messages_are_protocol_errors() -> None:
    with pytest.raises(RtmpProtocolError):
        ChunkReader().feed(fmt0(2, 0, 2, SET_CHUNK_SIZE, 0) + b"\x00\x01")


def test_abort_discards_a_partial_message() -> None:
    payload = b"q" * 200
    data = fmt0(4, 0, len(payload), VIDEO, 1) + payload[:128]
    data += control(ABORT, 4) + control(ABORT, 77)  # the second names an unknown stream
    data += fmt0(4, 0, 3, VIDEO, 1) + b"new"
    reader = ChunkReader()
    assert [m.payload for m in reader.feed(data) if m.type_id == VIDEO] == [b"new"]
    assert reader.buffered == 0


def test_a_first_chunk_without_a_full_header_is_an_error() -> None:
    with pytest.raises(RtmpProtocolError, match="full header"):
        ChunkReader().feed(basic(3, 4) + b"abc")
    with pytest.raises(RtmpProtocolError, match="full header"):
        ChunkReader().feed(fmt2(4, 10) + b"abc")


def test_a_new_header_in_the_middle_of_a_message_is_an_error() -> None:
    data = fmt0(4, 0, 300, VIDEO, 1) + b"x" * 128 + fmt0(4, 0, 10, VIDEO, 1)
    with pytest.raises(RtmpProtocolError, match="mid-message"):
        ChunkReader().feed(data)


def test_a_zero_length_message_completes_at_its_header() -> None:
    data = fmt0(3, 9, 0, COMMAND_AMF0, 0) + fmt0(3, 10, 1, COMMAND_AMF0, 0) + b"x"
    assert [(m.timestamp, m.payload) for m in ChunkReader().feed(data)] == [(9, b""), (10, b"x")]


def test_a_split_header_changes_nothing_until_it_is_complete() -> None:
    reader = ChunkReader()
    data = fmt0(5, 0x01000000, 2, AUDIO, 1)
    for cut in range(1, len(data)):
        assert reader.feed(data[cut - 1 : cut]) == []
        assert reader.buffered == cut
    [message] = reader.feed(data[-1:] + b"ok")
    assert (message.timestamp, message.payload) == (0x01000000, b"ok")


def test_oversized_messages_are_refused_before_buffering() -> None:
    reader = ChunkReader(max_message_size=1000)
    with pytest.raises(RtmpProtocolError, match="exceeds"):
        reader.feed(fmt0(4, 0, 5000, VIDEO, 1))


def test_too_many_partial_messages_are_refused() -> None:
    reader = ChunkReader(max_partial=2)
    data = b"".join(fmt0(4 + i, 0, 500, VIDEO, 1) + b"x" * 128 for i in range(3))
    with pytest.raises(RtmpProtocolError, match="partial"):
        reader.feed(data)


def test_too_much_unassembled_data_is_refused() -> None:
    reader = ChunkReader(max_message_size=10_000, max_buffered=15_000)
    reader.feed(control(SET_CHUNK_SIZE, 4096))

    def two_chunks_of(csid: int) -> bytes:
        written = encode_message(RtmpMessage(VIDEO, 1, 0, b"x" * 10_000, csid=csid), 4096)
        return written[: 12 + 4096 + 1 + 4096]

    reader.feed(two_chunks_of(4))
    assert reader.buffered == 8192
    with pytest.raises(RtmpProtocolError, match="unassembled"):
        reader.feed(two_chunks_of(5))


def test_too_many_chunk_stream_ids_are_refused() -> None:
    reader = ChunkReader(max_chunk_streams=4)
    reader.feed(b"".join(fmt0(3 + i, 0, 1, AUDIO, 1) + b"a" for i in range(4)))
    with pytest.raises(RtmpProtocolError, match="chunk streams"):
        reader.feed(fmt0(10, 0, 1, AUDIO, 1) + b"a")


@pytest.mark.parametrize("size", [1, 128, 4096, 60000])
@pytest.mark.parametrize("timestamp", [0, 1234, 0xFFFFFF, 0xFFFFFFFF])
def test_writer_output_reads_back(size: int, timestamp: int) -> None:
    message = RtmpMessage(VIDEO, 1, timestamp, bytes(range(256)) * 40, csid=6)
    reader = ChunkReader()
    reader.chunk_size = size
    [back] = reader.feed(encode_message(message, size))
    assert summary([back]) == summary([message])


def test_the_writer_refuses_what_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        encode_message(RtmpMessage(AUDIO, 1, 0, b"", csid=1), 128)
    with pytest.raises(ValueError):
        encode_message(RtmpMessage(AUDIO, 1, 0, b"", csid=3), 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_bytes_only_raise_protocol_errors_and_stay_bounded(chunks: list[bytes]) -> None:
    reader = ChunkReader(max_message_size=64 * 1024, max_partial=4, max_buffered=100_000)
    try:
        for chunk in chunks:
            reader.feed(chunk)
            assert reader.buffered <= 100_000 + 300 + 17
    except RtmpProtocolError:
        pass


messages_strategy = st.lists(
    st.tuples(
        st.sampled_from([AUDIO, VIDEO, COMMAND_AMF0]),
        st.integers(0, 0xFFFFFFFF),
        st.binary(max_size=2000),
        st.sampled_from([3, 4, 5, 64, 400]),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=150, deadline=None)
@given(messages_strategy, st.integers(1, 5000), st.lists(st.integers(0, 30_000), max_size=8))
def test_any_written_sequence_reads_back_however_it_is_split(
    messages: list[tuple[int, int, bytes, int]], chunk_size: int, cuts: list[int]
) -> None:
    data = control(SET_CHUNK_SIZE, chunk_size) + b"".join(
        encode_message(RtmpMessage(type_id, 1, ts, payload, csid=csid), chunk_size)
        for type_id, ts, payload, csid in messages
    )
    reader = ChunkReader()
    back: list[RtmpMessage] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        back += reader.feed(data[start:cut])
        start = cut
    assert [(m.type_id, m.timestamp, m.payload, m.csid) for m in back[1:]] == messages
    assert reader.buffered == 0


def test_one_feed_parses_at_most_max_chunks_and_holds_the_rest() -> None:
    reader = ChunkReader(max_chunks=100)
    data = fmt0(3, 0, 0, DATA_AMF0, 0) + b"\xc3" * 1000
    counts = [len(reader.feed(data))]
    while reader.held:
        counts.append(len(reader.feed(b"")))
    assert counts == [100] * 10 + [1]
    assert reader.buffered == 0


def test_bytes_fed_while_some_are_held_follow_them() -> None:
    reader = ChunkReader(max_chunks=1)
    first = fmt0(3, 0, 1, DATA_AMF0, 0) + b"a" + basic(3, 3) + b"b"
    assert [m.payload for m in reader.feed(first)] == [b"a"]
    assert reader.held and reader.buffered == 2
    assert [m.payload for m in reader.feed(basic(3, 3) + b"c")] == [b"b"]
    assert [m.payload for m in reader.feed(b"")] == [b"c"]
    assert not reader.held


def test_tiny_parts_are_counted_at_their_cost_in_memory() -> None:
    payload = b"x" * 1000
    data = control(SET_CHUNK_SIZE, 1) + encode_message(RtmpMessage(VIDEO, 1, 0, payload, 4), 1)
    reader = ChunkReader(max_buffered=100 * PART_COST)
    with pytest.raises(RtmpProtocolError, match="too much unassembled data"):
        reader.feed(data)


def test_set_limits_bounds_the_messages_that_follow() -> None:
    reader = ChunkReader(max_message_size=64)
    with pytest.raises(RtmpProtocolError, match="exceeds the limit"):
        ChunkReader(max_message_size=64).feed(fmt0(3, 0, 65, COMMAND_AMF0, 0))
    reader.set_limits(max_message_size=1000, max_buffered=1000)
    [message] = reader.feed(fmt0(3, 0, 65, VIDEO, 1) + b"v" * 65)
    assert message.payload == b"v" * 65
