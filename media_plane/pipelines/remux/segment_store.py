"""The segments and playlists an edge serves, in memory, per playback id.

Lives on the event loop (no locks): the packager threads hand segments over through
`loop.call_soon_threadsafe`, and the HTTP server reads with two dict lookups, because the
playlist bytes are rendered once per change rather than per request.

- The playlist lists a sliding window; segments that leave it stay reachable for their
  duration plus the playlist's (RFC 8216 6.2.2), and at least `min_retained` of them, so
  a player that fetched the playlist just before the slide still gets them.
- The state of a playback id outlives its publisher: the next publish continues the media
  sequence and is marked with `#EXT-X-DISCONTINUITY`.
- An ended stream keeps its ended playlist (`#EXT-X-ENDLIST`) for `ended_ttl` seconds, then
  is evicted by `evict_expired()`. With `end_grace` the ENDLIST waits that long for a
  reconnecting publisher first; a publisher that comes back later reopens the playlist.
- Segment names carry a random per-state tag, so a playback id that is evicted and
  published again never reuses a name a cache may still hold.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from media_plane.protocols.hls.playlist import LivePlaylist, PlaylistSegment

__all__ = ["SegmentStore", "StoreStats"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StoreStats:
    streams: int = 0
    segments: int = 0
    bytes: int = 0
    segments_added: int = 0
    streams_evicted: int = 0


@dataclass(slots=True)
class _Playback:
    tag: str
    playlist: LivePlaylist
    rendered: bytes = b""
    #: Listed segments and the ones still retained after leaving the window.
    segments: dict[str, bytes] = field(default_factory=dict)
    #: Segments that left the window: (name, monotonic time they may be dropped).
    retired: deque[tuple[str, float]] = field(default_factory=deque)
    live: bool = True
    #: Monotonic time the ENDLIST is due (publisher gone, grace running).
    end_due: float | None = None
    #: Monotonic time the ended stream is evicted.
    evict_at: float | None = None


class SegmentStore:
    def __init__(
        self,
        *,
        window: int = 6,
        min_retained: int = 3,
        ended_ttl: float = 60.0,
        end_grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or min_retained < 0 or ended_ttl < 0 or end_grace < 0:
            raise ValueError("invalid segment store limits")
        self._window = window
        self._min_retained = min_retained
        self._ended_ttl = ended_ttl
        self._end_grace = end_grace
        self._clock = clock
        self._playbacks: dict[str, _Playback] = {}
        self._segments_added = 0
        self._evicted = 0

    # -- reads (the HTTP hot path) -------------------------------------------------------

    def playlist(self, playback_id: str) -> bytes | None:
        playback = self._playbacks.get(playback_id)
        if playback is None or not playback.rendered:
            return None
        return playback.rendered

    def segment(self, playback_id: str, name: str) -> bytes | None:
        playback = self._playbacks.get(playback_id)
        if playback is None:
            return None
        return playback.segments.get(name)

    def __contains__(self, playback_id: object) -> bool:
        return playback_id in self._playbacks

    def is_live(self, playback_id: str) -> bool:
        playback = self._playbacks.get(playback_id)
        return playback is not None and playback.live

    def stats(self) -> StoreStats:
        segments = sum(len(p.segments) for p in self._playbacks.values())
        size = sum(len(d) for p in self._playbacks.values() for d in p.segments.values())
        return StoreStats(
            streams=len(self._playbacks),
            segments=segments,
            bytes=size,
            segments_added=self._segments_added,
            streams_evicted=self._evicted,
        )

    # -- writes (from the packager, on the loop) -----------------------------------------

    def add_segment(
        self,
        playback_id: str,
        data: bytes,
        *,
        duration: float,
        program_date_time: float,
        new_publish: bool = False,
        discontinuity: bool = False,
    ) -> str:
        """Publish a closed segment; returns its name (the URI relative to the playlist)."""
        playback = self._playbacks.get(playback_id)
        if playback is None:
            playback = _Playback(tag=secrets.token_hex(4), playlist=LivePlaylist(self._window))
            self._playbacks[playback_id] = playback
        elif new_publish and playback.playlist.next_sequence > 0:
            discontinuity = True
        playback.live = True
        playback.end_due = None
        playback.evict_at = None
        playlist = playback.playlist
        name = f"{playlist.next_sequence}-{playback.tag}.ts"
        playback.segments[name] = data
        _, removed = playlist.append(
            PlaylistSegment(name, duration, program_date_time, discontinuity)
        )
        now = self._clock()
        if removed:
            listed = sum(s.duration for s in playlist.segments)
            for gone in removed:
                playback.retired.append((gone.uri, now + gone.duration + listed))
        self._prune(playback, now)
        playback.rendered = playlist.render()
        self._segments_added += 1
        return name

    def end(self, playback_id: str) -> None:
        """The publisher is gone: the playlist ends now, or after `end_grace`."""
        playback = self._playbacks.get(playback_id)
        if playback is None:
            return
        now = self._clock()
        playback.live = False
        if self._end_grace > 0:
            playback.end_due = now + self._end_grace
        else:
            self._finish(playback, now)

    def evict_expired(self) -> list[str]:
        """Write due ENDLISTs, drop retired segments and expired streams; returns evicted ids."""
        now = self._clock()
        evicted: list[str] = []
        for playback_id, playback in list(self._playbacks.items()):
            if playback.end_due is not None and now >= playback.end_due:
                self._finish(playback, now)
            if playback.evict_at is not None and now >= playback.evict_at:
                del self._playbacks[playback_id]
                evicted.append(playback_id)
                continue
            self._prune(playback, now)
        self._evicted += len(evicted)
        if evicted:
            logger.debug("evicted ended streams %s", evicted)
        return evicted

    def _finish(self, playback: _Playback, now: float) -> None:
        playback.end_due = None
        playback.evict_at = now + self._ended_ttl
        playback.playlist.end()
        playback.rendered = playback.playlist.render()

    def _prune(self, playback: _Playback, now: float) -> None:
        retired = playback.retired
        while len(retired) > self._min_retained and retired[0][1] <= now:
            name, _ = retired.popleft()
            playback.segments.pop(name, None)
