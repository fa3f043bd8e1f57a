"""The sidecar's RTMP limits: read from EDGE_RTMP__<NAME>, validated, handed to the engine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_sidecar.settings import EdgeSidecarSettings
from media_plane.edge_engine import EngineSettings


def test_rtmp_limits_from_the_environment_reach_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EDGE_RTMP__MAX_CONNECTIONS", "2000")
    monkeypatch.setenv("EDGE_RTMP__MAX_CONNECTIONS_PER_ADDRESS", "4")
    monkeypatch.setenv("EDGE_RTMP__HANDSHAKE_TIMEOUT_S", "2.5")
    limits = EdgeSidecarSettings().engine_settings().rtmp
    assert (limits.max_connections, limits.max_connections_per_address) == (2000, 4)
    assert limits.handshake_timeout_s == 2.5
    assert (
        limits.unauthorized_max_message_bytes
        == EngineSettings().rtmp.unauthorized_max_message_bytes
    )


def test_bad_rtmp_limits_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_RTMP__MAX_CONNECTIONS", "0")
    with pytest.raises(ValidationError):
        EdgeSidecarSettings()
