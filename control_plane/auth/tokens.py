"""Signed tokens (JWT, HS256) and API token formatting: pure functions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from control_plane.errors import AuthenticationError

_ALGORITHM = "HS256"
_ISSUER = "tidecast"
ACCESS_AUDIENCE = "tidecast-api"
PLAYBACK_AUDIENCE = "tidecast-playback"
API_TOKEN_PREFIX = "tc_"


def encode_access_token(user_id: str, secret: str, ttl_s: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": user_id,
        "iat": issued,
        "exp": issued + ttl_s,
        "iss": _ISSUER,
        "aud": ACCESS_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_access_token(token: str, secret: str) -> str:
    """Returns the user id, or raises AuthenticationError."""
    return str(_decode(token, secret, ACCESS_AUDIENCE)["sub"])


def encode_playback_token(
    playback_id: str, secret: str, ttl_s: int, now: float | None = None
) -> tuple[str, int]:
    issued = int(now if now is not None else time.time())
    expires = issued + ttl_s
    claims = {
        "sub": playback_id,
        "iat": issued,
        "exp": expires,
        "iss": _ISSUER,
        "aud": PLAYBACK_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires


def playback_token_grants(token: str, playback_id: str, secret: str) -> bool:
    try:
        claims = _decode(token, secret, PLAYBACK_AUDIENCE)
    except AuthenticationError:
        return False
    return claims.get("sub") == playback_id


def _decode(token: str, secret: str, audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            issuer=_ISSUER,
            options={"require": ["exp", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError("invalid token") from exc
    return claims


@dataclass(frozen=True, slots=True)
class ApiTokenParts:
    token_id: str
    secret: str


def format_api_token(token_id: str, secret: str) -> str:
    return f"{API_TOKEN_PREFIX}{token_id.replace('-', '')}.{secret}"


def parse_api_token(token: str) -> ApiTokenParts | None:
    """Splits `tc_<32 hex id>.<secret>`; None when the shape is wrong."""
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    body = token[len(API_TOKEN_PREFIX) :]
    raw_id, sep, secret = body.partition(".")
    if not sep or len(raw_id) != 32 or not secret or len(secret) > 200:
        return None
    try:
        int(raw_id, 16)
    except ValueError:
        return None
    token_id = f"{raw_id[:8]}-{raw_id[8:12]}-{raw_id[12:16]}-{raw_id[16:20]}-{raw_id[20:]}"
    return ApiTokenParts(token_id=token_id, secret=secret)


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)
