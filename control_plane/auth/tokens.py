"""Access tokens (signed, see `signed_tokens.py`) and API token formatting: pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.signed_tokens import decode_signed_token, encode_signed_token

ACCESS_AUDIENCE = "tidecast-api"
API_TOKEN_PREFIX = "tc_"


def encode_access_token(user_id: str, secret: str, ttl_s: int, now: float | None = None) -> str:
    return encode_signed_token(user_id, ACCESS_AUDIENCE, secret, ttl_s, now)[0]


def decode_access_token(token: str, secret: str) -> str:
    """Returns the user id, or raises AuthenticationError."""
    return str(decode_signed_token(token, secret, ACCESS_AUDIENCE)["sub"])


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
