"""The tansu harness (tests/harness/kafka.py): a real broker on loopback that answers
Kafka metadata, can be frozen and thawed, and is gone once stopped."""

from __future__ import annotations

import os
import socket

import pytest

from tests.harness.kafka import TansuBroker, metadata_brokers


def test_the_session_broker_advertises_itself_on_loopback(tansu_broker: TansuBroker) -> None:
    assert tansu_broker.bootstrap == f"127.0.0.1:{tansu_broker.port}"
    assert metadata_brokers(tansu_broker.port) == [("127.0.0.1", tansu_broker.port)]
    os.kill(tansu_broker.pid, 0)  # alive


def test_a_private_broker_can_be_frozen_thawed_and_stopped(private_tansu: TansuBroker) -> None:
    private_tansu.pause()
    with pytest.raises(OSError):
        metadata_brokers(private_tansu.port, timeout_s=0.3)

    private_tansu.resume()
    assert metadata_brokers(private_tansu.port) == [("127.0.0.1", private_tansu.port)]

    private_tansu.pause()
    private_tansu.stop()  # also from frozen
    assert private_tansu.process.returncode is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", private_tansu.port), 1):
        pass
