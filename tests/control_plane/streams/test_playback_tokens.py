"""Playback tokens (control_plane/streams/playback_tokens.py)."""

from __future__ import annotations

from control_plane.auth.tokens import encode_access_token
from control_plane.streams.playback_tokens import encode_playback_token, playback_token_grants

SECRET = "s" * 40


def test_playback_tokens_grant_only_their_stream_until_they_expire() -> None:
    token, expires = encode_playback_token("pb1", SECRET, ttl_s=60, now=1_000_000)
    assert expires == 1_000_060
    fresh, _ = encode_playback_token("pb1", SECRET, ttl_s=60)
    assert playback_token_grants(fresh, "pb1", SECRET)
    assert not playback_token_grants(token, "pb1", SECRET)  # long expired
    assert not playback_token_grants(fresh, "pb2", SECRET)
    assert not playback_token_grants(fresh, "pb1", "t" * 40)
    assert not playback_token_grants("garbage", "pb1", SECRET)
    access = encode_access_token("pb1", SECRET, ttl_s=60)
    assert not playback_token_grants(access, "pb1", SECRET)
