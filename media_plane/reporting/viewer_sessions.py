"""Turns stateless HLS requests into viewer sessions: pure, clock injected.

A viewer is one (playback id, client address, user agent); it starts with its first
request, makes progress with every byte delivered, and ends after `idle_s` without a
request (a player polls the playlist every target duration, so a few of those).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(slots=True)
class ViewerSession:
    session_id: str
    playback_id: str
    client_addr: str
    user_agent: str
    protocol: str
    started_at: float
    last_seen: float
    bytes_pending: int = 0
    watched_pending_ms: int = 0
    progress_at: float = 0.0


@dataclass(slots=True)
class ViewerChanges:
    started: list[ViewerSession] = field(default_factory=list)
    progressed: list[tuple[ViewerSession, int, int]] = field(default_factory=list)
    ended: list[tuple[ViewerSession, int, int]] = field(default_factory=list)


class ViewerSessions:
    def __init__(self, idle_s: float = 20.0, progress_every_s: float = 30.0) -> None:
        self._idle = idle_s
        self._progress_every = progress_every_s
        self._sessions: dict[tuple[str, str, str], ViewerSession] = {}
        self._pending_starts: list[ViewerSession] = []

    def delivered(
        self,
        playback_id: str,
        client_addr: str,
        user_agent: str,
        nbytes: int,
        now: float,
        protocol: str = "hls",
    ) -> None:
        host = client_addr.rsplit(":", 1)[0] if client_addr.count(":") == 1 else client_addr
        key = (playback_id, host, user_agent)
        session = self._sessions.get(key)
        if session is None:
            session = ViewerSession(
                uuid.uuid4().hex,
                playback_id,
                host,
                user_agent,
                protocol,
                started_at=now,
                last_seen=now,
                progress_at=now,
            )
            self._sessions[key] = session
            self._pending_starts.append(session)
        session.watched_pending_ms += int(max(0.0, now - session.last_seen) * 1000)
        session.last_seen = now
        session.bytes_pending += nbytes

    def viewers_of(self, playback_id: str) -> int:
        return sum(1 for s in self._sessions.values() if s.playback_id == playback_id)

    def count(self) -> int:
        return len(self._sessions)

    def sweep(self, now: float, *, end_all: bool = False) -> ViewerChanges:
        changes = ViewerChanges(started=self._pending_starts)
        self._pending_starts = []
        for key, session in list(self._sessions.items()):
            if end_all or now - session.last_seen >= self._idle:
                del self._sessions[key]
                changes.ended.append((session, session.bytes_pending, session.watched_pending_ms))
            elif now - session.progress_at >= self._progress_every:
                changes.progressed.append(
                    (session, session.bytes_pending, session.watched_pending_ms)
                )
                session.bytes_pending = 0
                session.watched_pending_ms = 0
                session.progress_at = now
        return changes
