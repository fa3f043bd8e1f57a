"""What is live right now, rebuilt from the event stream. Pure: events in, updates out.

Applying an event twice changes nothing (sessions are sets; lifecycle events are
remembered by id), because the bus delivers at least once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidecast.events.v1 import events_pb2 as ev

from data_plane.ingress.recent_ids import RecentIds

_VIEWER_KINDS = frozenset({"viewer_started", "viewer_progress", "viewer_ended"})
_LIFECYCLE_KINDS = frozenset({"stream_started", "stream_ended"})


@dataclass(frozen=True, slots=True)
class Update:
    tenant_id: str
    stream_id: str
    message: dict[str, Any]


def _ms(event: ev.Event) -> int:
    return event.occurred_at.seconds * 1000 + event.occurred_at.nanos // 1_000_000


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Stream:
    live: bool = False
    #: session id -> last activity, ms since the epoch (receive clock).
    viewers: dict[str, int] = field(default_factory=dict)


class LiveState:
    def __init__(self, idle_ms: int) -> None:
        self._idle_ms = idle_ms
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._seen = RecentIds(capacity=100_000)

    def apply(self, events: Iterable[ev.Event], now_ms: int) -> list[Update]:
        """Applies a fetched batch; returns lifecycle messages, then one viewer count per
        stream whose count changed."""
        updates: list[Update] = []
        before: dict[tuple[str, str], int] = {}
        for event in events:
            kind = event.WhichOneof("payload")
            if not event.tenant_id or kind is None:
                continue
            key = (event.tenant_id, event.stream_id)
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _Stream()
            if kind in _VIEWER_KINDS:
                before.setdefault(key, len(stream.viewers))
                session = getattr(event, kind).session_id
                if kind == "viewer_ended":
                    stream.viewers.pop(session, None)
                else:
                    stream.viewers[session] = now_ms
            elif kind in _LIFECYCLE_KINDS:
                if event.event_id in self._seen:
                    continue
                self._seen.remember((event.event_id,))
                stream.live = kind == "stream_started"
                payload = getattr(event, kind)
                message: dict[str, Any] = {
                    "type": kind,
                    "stream_id": event.stream_id,
                    "event_id": event.event_id,
                    "occurred_at": _iso_ms(_ms(event)),
                    "session_id": payload.session_id,
                }
                if kind == "stream_started":
                    message["video_codec"] = payload.media.video_codec
                    message["width"] = payload.media.width
                    message["height"] = payload.media.height
                    message["audio_codec"] = payload.media.audio_codec
                else:
                    message["duration_ms"] = payload.duration_ms
                updates.append(Update(event.tenant_id, event.stream_id, message))
        for key, count in before.items():
            now_count = len(self._streams[key].viewers)
            if now_count != count:
                updates.append(self._count(key, now_count))
        return updates

    def expire(self, now_ms: int) -> list[Update]:
        """Forgets viewers idle longer than the timeout (their end event never came)."""
        updates = []
        for key, stream in self._streams.items():
            idle = [s for s, seen in stream.viewers.items() if now_ms - seen > self._idle_ms]
            if idle:
                for session in idle:
                    del stream.viewers[session]
                updates.append(self._count(key, len(stream.viewers)))
        for key in [k for k, s in self._streams.items() if not s.live and not s.viewers]:
            del self._streams[key]
        return updates

    def seed(
        self, tenant_id: str, sessions: dict[str, list[str]], live: set[str], now_ms: int
    ) -> None:
        """Adds what the warehouse knows of a tenant (before the hub followed it)."""
        for stream_id, ids in sessions.items():
            stream = self._streams.setdefault((tenant_id, stream_id), _Stream())
            for session in ids:
                stream.viewers.setdefault(session, now_ms)
        for stream_id in live:
            self._streams.setdefault((tenant_id, stream_id), _Stream()).live = True

    def forget(self, tenant_id: str) -> None:
        for key in [k for k in self._streams if k[0] == tenant_id]:
            del self._streams[key]

    def snapshot(self, tenant_id: str) -> dict[str, Any]:
        streams = {
            stream_id: {"live": s.live, "viewers": len(s.viewers)}
            for (tenant, stream_id), s in self._streams.items()
            if tenant == tenant_id
        }
        return {"type": "snapshot", "streams": streams}

    def _count(self, key: tuple[str, str], viewers: int) -> Update:
        return Update(
            key[0], key[1], {"type": "viewer_count", "stream_id": key[1], "viewers": viewers}
        )
