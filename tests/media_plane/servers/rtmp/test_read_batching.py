"""The receive watermark for publishing connections: the pure rule, and the option on real
loopback sockets (the kernel's behaviour is what the engine relies on)."""

from __future__ import annotations

import select
import socket
import sys
from collections.abc import Iterator

import pytest

from media_plane.servers.rtmp.read_batching import (
    MAX_WATERMARK,
    ReadBatching,
    low_watermark,
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="SO_RCVLOWAT is tuned on Linux")


def test_the_watermark_is_a_tenth_of_a_second_of_what_the_publisher_delivered() -> None:
    assert low_watermark(375_000, 1.0, 2_500_000) == 37_500
    assert low_watermark(187_500, 0.5, 0) == 37_500


def test_the_watermark_is_capped_by_the_limit_and_by_the_peer_ack_window() -> None:
    assert low_watermark(10_000_000, 1.0, 0) == MAX_WATERMARK
    assert low_watermark(375_000, 1.0, 40_000) == 10_000
    assert low_watermark(375_000, 1.0, 3) == 1


def test_nothing_delivered_means_waking_on_every_byte() -> None:
    assert low_watermark(0, 1.0, 2_500_000) == 1
    assert low_watermark(5, 1.0, 2_500_000) == 1
    assert low_watermark(375_000, 0.0, 2_500_000) == 1


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
    with sender, receiver:
        yield sender, receiver


def _readable(sock: socket.socket, timeout: float = 0.1) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def _streaming(receiver: socket.socket) -> ReadBatching:
    """Batching after one second in which 375,000 bytes (3 Mbit/s) were delivered."""
    batching = ReadBatching(receiver)
    batching.tune(0, 10.0, 0)
    batching.tune(375_000, 11.0, 0)
    return batching


@linux_only
def test_a_streaming_publisher_is_woken_only_once_a_batch_is_there(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    batching = ReadBatching(receiver)
    batching.tune(0, 10.0, 2_500_000)
    assert batching.watermark == 1  # the first call only starts the interval
    batching.tune(375_000, 11.0, 2_500_000)
    assert batching.watermark == 37_500
    assert receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 37_500
    sender.sendall(b"x" * 1000)
    assert not _readable(receiver)
    sender.sendall(b"x" * 40_000)
    assert _readable(receiver)


@linux_only
def test_a_stalled_publisher_gets_its_held_bytes_delivered_at_the_next_tuning(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = pair
    batching = _streaming(receiver)
    sender.sendall(b"last frame")
    assert not _readable(receiver)
    batching.tune(375_000, 12.0, 0)  # nothing delivered in that second
    assert batching.watermark == 1
    assert _readable(receiver, 1.0)
    assert receiver.recv(100) == b"last frame"


@linux_only
def test_reset_goes_back_to_every_byte(pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair
    batching = _streaming(receiver)
    batching.reset()
    assert receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
    sender.sendall(b"deleteStream")
    assert _readable(receiver, 1.0)
    batching.tune(0, 12.0, 0)
    assert batching.watermark == 1  # a new interval starts after a reset


def test_a_closed_socket_is_left_alone() -> None:
    sock = socket.socket()
    sock.close()
    batching = ReadBatching(sock)
    batching.tune(0, 10.0, 0)
    batching.tune(375_000, 11.0, 0)
    batching.tune(750_000, 12.0, 0)
    assert batching.watermark == 1
