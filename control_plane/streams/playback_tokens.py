"""Playback tokens for private streams: a signed token whose subject is the playback id."""

from __future__ import annotations

from control_plane.errors import AuthenticationError
from control_plane.signed_tokens import decode_signed_token, encode_signed_token

PLAYBACK_AUDIENCE = "tidecast-playback"


def encode_playback_token(
    playback_id: str, secret: str, ttl_s: int, now: float | None = None
) -> tuple[str, int]:
    return encode_signed_token(playback_id, PLAYBACK_AUDIENCE, secret, ttl_s, now)


def playback_token_grants(token: str, playback_id: str, secret: str) -> bool:
    try:
        claims = decode_signed_token(token, secret, PLAYBACK_AUDIENCE)
    except AuthenticationError:
        return False
    return claims.get("sub") == playback_id
