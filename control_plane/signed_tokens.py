"""Signed tokens (JWT, HS256, issuer "tidecast"), one audience per purpose: pure functions.

Auth signs access tokens with it and streams sign playback tokens; the audience keeps one
kind from being accepted as the other.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from control_plane.errors import AuthenticationError

_ALGORITHM = "HS256"
_ISSUER = "tidecast"


def encode_signed_token(
    subject: str, audience: str, secret: str, ttl_s: int, now: float | None = None
) -> tuple[str, int]:
    """The token and its expiry (Unix seconds)."""
    issued = int(now if now is not None else time.time())
    expires = issued + ttl_s
    claims = {"sub": subject, "iat": issued, "exp": expires, "iss": _ISSUER, "aud": audience}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM), expires


def decode_signed_token(token: str, secret: str, audience: str) -> dict[str, Any]:
    """The token's claims, or AuthenticationError."""
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
