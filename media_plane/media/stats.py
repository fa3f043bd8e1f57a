"""Counters the engine exposes to its host (heartbeats, metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from media_plane.media.protocol import MediaProtocol


@dataclass(frozen=True, slots=True)
class StreamStats:
    stream_id: str
    playback_id: str
    protocol: MediaProtocol
    viewers: int
    bytes_in: int
    ingest_bitrate_bps: int
    #: Media is flowing (the stream started event went out). False while a publish holds
    #: the key without media yet (a WHIP peer still connecting): not live, not playable.
    live: bool = True


@dataclass(frozen=True, slots=True)
class EngineStats:
    streams: list[StreamStats] = field(default_factory=list)
    viewers: int = 0
    #: Totals since the engine started.
    bytes_in: int = 0
    bytes_out: int = 0
    #: WebRTC sessions open now (WHIP publishers, WHEP viewers; viewers are also counted in
    #: `viewers`).
    webrtc_publishers: int = 0
    webrtc_viewers: int = 0
    #: WebRTC sessions ended since the engine started, by why they ended
    #: (client_ended, peer_closed, peer_lost, connect_timeout, stream_ended, node_stopped).
    webrtc_sessions_ended: dict[str, int] = field(default_factory=dict)
