"""What WebRTC sessions are configured with and what they report to the engine."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Answer", "SessionStart", "WebRtcOptions", "WebRtcStats"]


@dataclass(frozen=True, slots=True)
class WebRtcOptions:
    #: Addresses the edge gathers ICE host candidates on. Empty: aioice's default (every
    #: interface address except loopback).
    host_addresses: tuple[str, ...] = ()
    #: STUN/TURN URLs for the edge's own gathering and for clients (`Link` headers).
    ice_servers: tuple[str, ...] = ()
    #: A session whose peer has not connected (ICE and DTLS) by then is closed.
    connect_timeout_s: float = 15.0
    authorize_timeout_s: float = 5.0
    max_sessions: int = 2000


@dataclass(frozen=True, slots=True)
class Answer:
    session_id: str
    sdp: str


@dataclass(frozen=True, slots=True)
class SessionStart:
    session_id: str
    role: str  # "publish" or "play"
    stream_id: str
    playback_id: str
    client_addr: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class WebRtcStats:
    publishers: int
    viewers: int
    sessions_total: int
    connect_timeouts: int
    video_encoders: int
    audio_transcoders: int
    #: Media bytes handed to viewers' senders since start (before RTP/SRTP overhead).
    bytes_out: int
    ended: dict[str, int]
