"""Viewer sessions of every protocol, one mechanism: pure, clock injected.

Two kinds of viewer feed it. HLS is stateless: a viewer is one (playback id, client
address, user agent); it starts with its first request, makes progress with every byte
delivered, and ends after `idle_s` without a request (a player polls the playlist every
target duration, so a few of those). WHEP is stateful: the server opens and closes each
session and counts what it sent, which the sessions read at each progress.

Changes collect until `sweep`; opening and closing a stateful session also hands its
change to `on_change` at once, so its start and end are reported when they happen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from media_plane.media.protocol import MediaProtocol

__all__ = ["ViewerChanges", "ViewerSession", "ViewerSessions"]


@dataclass(slots=True)
class ViewerSession:
    session_id: str
    playback_id: str
    client_addr: str
    user_agent: str
    protocol: MediaProtocol
    started_at: float
    last_seen: float
    #: Known for stateful sessions; stateless ones resolve it from the playback id.
    stream_id: str = ""
    bytes_pending: int = 0
    watched_pending_ms: int = 0
    progress_at: float = 0.0
    #: Stateful sessions: what the server has sent in all, read at each progress.
    bytes_sent: Callable[[], int] | None = None
    bytes_reported: int = 0
    end_reason: str = ""

    @property
    def stateful(self) -> bool:
        return self.bytes_sent is not None


@dataclass(slots=True)
class ViewerChanges:
    started: list[ViewerSession] = field(default_factory=list)
    #: (session, bytes sent, watched ms) since the session's previous event.
    progressed: list[tuple[ViewerSession, int, int]] = field(default_factory=list)
    ended: list[tuple[ViewerSession, int, int]] = field(default_factory=list)


class ViewerSessions:
    def __init__(
        self,
        idle_s: float,
        progress_every_s: float,
        on_change: Callable[[ViewerChanges], None] | None = None,
    ) -> None:
        self._idle = idle_s
        self._progress_every = progress_every_s
        self._on_change = on_change
        #: Stateless sessions by (playback id, host, user agent).
        self._requests: dict[tuple[str, str, str], ViewerSession] = {}
        #: Stateful sessions by session id.
        self._sessions: dict[str, ViewerSession] = {}
        self._pending_starts: list[ViewerSession] = []

    # -- stateless viewers (HLS) -------------------------------------------------------

    def delivered(
        self,
        playback_id: str,
        client_addr: str,
        user_agent: str,
        nbytes: int,
        now: float,
        protocol: MediaProtocol = MediaProtocol.HLS,
    ) -> None:
        host = client_addr.rsplit(":", 1)[0] if client_addr.count(":") == 1 else client_addr
        key = (playback_id, host, user_agent)
        session = self._requests.get(key)
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
            self._requests[key] = session
            self._pending_starts.append(session)
        session.watched_pending_ms += int(max(0.0, now - session.last_seen) * 1000)
        session.last_seen = now
        session.bytes_pending += nbytes

    # -- stateful viewers (WHEP) -------------------------------------------------------

    def opened(
        self,
        session_id: str,
        *,
        playback_id: str,
        stream_id: str,
        client_addr: str,
        user_agent: str,
        protocol: MediaProtocol,
        bytes_sent: Callable[[], int],
        now: float,
    ) -> None:
        session = ViewerSession(
            session_id,
            playback_id,
            client_addr,
            user_agent,
            protocol,
            started_at=now,
            last_seen=now,
            stream_id=stream_id,
            progress_at=now,
            bytes_sent=bytes_sent,
        )
        self._sessions[session_id] = session
        self._changed(ViewerChanges(started=[session]))

    def closed(self, session_id: str, bytes_sent: int, reason: str, now: float) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        session.last_seen = now
        session.end_reason = reason
        watched = int((now - session.progress_at) * 1000)
        self._changed(
            ViewerChanges(ended=[(session, max(0, bytes_sent - session.bytes_reported), watched)])
        )

    # -- both ----------------------------------------------------------------------------

    def viewers_of(self, playback_id: str) -> int:
        return sum(
            1
            for sessions in (self._requests, self._sessions)
            for s in sessions.values()
            if s.playback_id == playback_id
        )

    def count(self) -> int:
        return len(self._requests) + len(self._sessions)

    def sweep(self, now: float, *, end_all: bool = False) -> ViewerChanges:
        changes = ViewerChanges(started=self._pending_starts)
        self._pending_starts = []
        for key, session in list(self._requests.items()):
            if end_all or now - session.last_seen >= self._idle:
                del self._requests[key]
                changes.ended.append((session, session.bytes_pending, session.watched_pending_ms))
            elif now - session.progress_at >= self._progress_every:
                changes.progressed.append(
                    (session, session.bytes_pending, session.watched_pending_ms)
                )
                session.bytes_pending = 0
                session.watched_pending_ms = 0
                session.progress_at = now
        for session_id, session in list(self._sessions.items()):
            due = now - session.progress_at >= self._progress_every
            if not (end_all or due):
                continue
            sent = session.bytes_sent() if session.bytes_sent is not None else 0
            delta = (
                session,
                max(0, sent - session.bytes_reported),
                int((now - session.progress_at) * 1000),
            )
            session.bytes_reported = sent
            session.progress_at = now
            if end_all:
                del self._sessions[session_id]
                session.last_seen = now
                changes.ended.append(delta)
            else:
                changes.progressed.append(delta)
        return changes

    def _changed(self, changes: ViewerChanges) -> None:
        if self._on_change is not None:
            self._on_change(changes)
