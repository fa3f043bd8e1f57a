"""Public URLs of a stream, from the configured public bases."""

from __future__ import annotations


def ingest_url(public_rtmp_url: str, stream_key: str) -> str:
    return f"{public_rtmp_url.rstrip('/')}/{stream_key}"


def playback_url(public_playback_url: str, playback_id: str) -> str:
    return f"{public_playback_url.rstrip('/')}/hls/{playback_id}/index.m3u8"


def whip_url(public_webrtc_url: str) -> str:
    """The WHIP endpoint; the stream key travels as the Bearer token, not in the URL."""
    return f"{public_webrtc_url.rstrip('/')}/whip"


def whep_url(public_webrtc_url: str, playback_id: str) -> str:
    return f"{public_webrtc_url.rstrip('/')}/whep/{playback_id}"
