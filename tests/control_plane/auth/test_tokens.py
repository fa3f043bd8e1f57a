"""Access tokens and API token formatting (control_plane/auth/tokens.py)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.auth.tokens import (
    ACCESS_AUDIENCE,
    decode_access_token,
    encode_access_token,
    format_api_token,
    is_api_token,
    parse_api_token,
)
from control_plane.errors import AuthenticationError
from control_plane.streams.playback_tokens import encode_playback_token

SECRET = "s" * 40


def test_access_tokens_round_trip() -> None:
    token = encode_access_token("user-1", SECRET, ttl_s=60)
    assert decode_access_token(token, SECRET) == "user-1"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=ACCESS_AUDIENCE)
    assert claims["exp"] - claims["iat"] == 60 and claims["iss"] == "tidecast"


def test_expired_access_tokens_are_refused() -> None:
    old = encode_access_token("user-1", SECRET, ttl_s=60, now=time.time() - 61)
    with pytest.raises(AuthenticationError, match="expired"):
        decode_access_token(old, SECRET)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t: encode_access_token("user-1", "other" * 10, ttl_s=60), id="key"),
        pytest.param(lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), id="signature"),
        pytest.param(lambda t: encode_playback_token("user-1", SECRET, 60)[0], id="audience"),
        pytest.param(
            lambda t: jwt.encode(
                {"sub": "user-1", "aud": ACCESS_AUDIENCE, "iss": "tidecast",
                 "exp": int(time.time()) + 60},
                "",
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(
            lambda t: jwt.encode(
                {"sub": "user-1", "aud": ACCESS_AUDIENCE, "iss": "tidecast"}, SECRET, "HS256"
            ),
            id="no-expiry",
        ),
        pytest.param(
            lambda t: jwt.encode(
                {"sub": "user-1", "aud": ACCESS_AUDIENCE, "iss": "someone-else",
                 "exp": int(time.time()) + 60},
                SECRET,
                "HS256",
            ),
            id="issuer",
        ),
        pytest.param(lambda t: "not.a.jwt", id="garbage"),
        pytest.param(lambda t: "", id="empty"),
    ],
)  # fmt: skip
def test_forged_access_tokens_are_refused(forge: object) -> None:
    genuine = encode_access_token("user-1", SECRET, ttl_s=60)
    assert callable(forge)
    with pytest.raises(AuthenticationError):
        decode_access_token(forge(genuine), SECRET)


@given(token_id=st.uuids(version=4).map(str), secret=st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="."), min_size=1, max_size=200
))  # fmt: skip
def test_api_tokens_round_trip(token_id: str, secret: str) -> None:
    formatted = format_api_token(token_id, secret)
    assert is_api_token(formatted)
    parts = parse_api_token(formatted)
    assert parts is not None and (parts.token_id, parts.secret) == (token_id, secret)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "tc_",
        "tc_abc.def",
        "tc_" + "g" * 32 + ".x",
        "xx" + "0" * 32 + ".x",
        "tc_" + "0" * 32 + ".",
        "tc_" + "0" * 32,
        "tc_" + "0" * 31 + ".x",
        "tc_" + "0" * 33 + ".x",
        "tc_" + "0" * 32 + "." + "x" * 201,
        "TC_" + "0" * 32 + ".x",
    ],
)
def test_malformed_api_tokens_are_refused(junk: str) -> None:
    assert parse_api_token(junk) is None


def test_only_the_prefix_marks_an_api_token() -> None:
    assert is_api_token(format_api_token(str(uuid.uuid4()), "x"))
    assert not is_api_token(encode_access_token("u", SECRET, ttl_s=60))
    assert not is_api_token("rt_x")
