"""The sidecar's WebRTC settings: which ICE addresses the edge offers, and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_sidecar.settings import EdgeSidecarSettings


def test_configured_ice_addresses_win() -> None:
    settings = EdgeSidecarSettings(bind_host="0.0.0.0", ice_host_addresses=("203.0.113.7",))
    assert settings.offered_ice_addresses() == ("203.0.113.7",)


def test_an_edge_bound_to_one_address_offers_it_loopback_included() -> None:
    assert EdgeSidecarSettings(bind_host="127.0.0.1").offered_ice_addresses() == ("127.0.0.1",)
    assert EdgeSidecarSettings(bind_host="10.1.2.3").offered_ice_addresses() == ("10.1.2.3",)


def test_an_edge_bound_everywhere_leaves_the_choice_to_aioice() -> None:
    assert EdgeSidecarSettings(bind_host="0.0.0.0").offered_ice_addresses() == ()
    assert EdgeSidecarSettings(bind_host="::").offered_ice_addresses() == ()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_ICE_HOST_ADDRESSES", '["198.51.100.4", "2001:db8::4"]')
    monkeypatch.setenv("EDGE_ICE_SERVERS", '["stun:stun.example.net:3478"]')
    monkeypatch.setenv("EDGE_WEBRTC_PORT", "9089")
    settings = EdgeSidecarSettings()
    assert settings.ice_host_addresses == ("198.51.100.4", "2001:db8::4")
    assert settings.ice_servers == ("stun:stun.example.net:3478",)
    assert settings.webrtc_port == 9089 and settings.webrtc_enabled


def test_bad_webrtc_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        EdgeSidecarSettings(ice_host_addresses=("edge.example.com",))
    with pytest.raises(ValidationError):
        EdgeSidecarSettings(ice_servers=("http://stun.example.net",))
    with pytest.raises(ValidationError):
        EdgeSidecarSettings(webrtc_connect_timeout_s=0)
