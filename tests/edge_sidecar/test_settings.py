"""The edge refuses a placeholder hashing salt outside development."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from edge_sidecar.settings import EdgeSidecarSettings


def test_development_accepts_the_placeholder_salt() -> None:
    assert EdgeSidecarSettings().ip_hash_salt.get_secret_value()


@pytest.mark.parametrize("salt", ["tidecast", "short"])
def test_production_refuses_a_placeholder_or_short_salt(salt: str) -> None:
    with pytest.raises(ValidationError, match="EDGE_IP_HASH_SALT"):
        EdgeSidecarSettings(environment="production", ip_hash_salt=SecretStr(salt))


def test_production_takes_a_random_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_ENVIRONMENT", "production")
    monkeypatch.setenv("EDGE_IP_HASH_SALT", "b1946ac92492d2347c6235b4d2611184")
    assert EdgeSidecarSettings().environment == "production"
