"""WHIP/WHEP URL layout and the status each refusal maps to. Pure.

POST   /whip                    offer in, Authorization: Bearer <stream key>
POST   /whip/{stream_key}       offer in, the key in the path (OBS and simple clients)
DELETE /whip/session/{id}       ends the publish (the Location answered by POST)
POST   /whep/{playback_id}      offer in, Authorization: Bearer <playback token> if private
DELETE /whep/session/{id}       ends the playback
PATCH  .../session/{id}         trickle ICE candidates (204); an ICE restart is refused (405)
OPTIONS anything                CORS preflight (and ICE servers in Link headers)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from media_plane.media.hooks import PlayDenial, PublishDenial

__all__ = [
    "Action",
    "Route",
    "play_denial_status",
    "publish_denial_status",
    "route",
    "session_location",
]

_ID = re.compile(r"[A-Za-z0-9_.~-]{1,256}")


class Action(StrEnum):
    PUBLISH = "publish"
    PLAY = "play"
    END_PUBLISH = "end_publish"
    END_PLAY = "end_play"
    TRICKLE_PUBLISH = "trickle_publish"
    TRICKLE_PLAY = "trickle_play"
    PREFLIGHT = "preflight"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"


@dataclass(frozen=True, slots=True)
class Route:
    action: Action
    #: The stream key, playback id or session id from the path ("" when absent).
    value: str = ""
    #: Methods the path answers to (for Allow headers).
    allow: str = ""


_POST_ALLOW = "POST, OPTIONS"
_SESSION_ALLOW = "DELETE, PATCH, OPTIONS"


def route(method: str, path: str) -> Route:
    parts = path.split("/")
    # "/whip/x" splits into ["", "whip", "x"].
    if len(parts) < 2 or parts[0] != "" or parts[1] not in ("whip", "whep"):
        return Route(Action.NOT_FOUND)
    kind = parts[1]
    rest = parts[2:]
    if method == "OPTIONS":
        return Route(Action.PREFLIGHT, allow=_SESSION_ALLOW if len(rest) == 2 else _POST_ALLOW)
    if len(rest) == 2 and rest[0] == "session" and _ID.fullmatch(rest[1]):
        if method == "DELETE":
            return Route(Action.END_PUBLISH if kind == "whip" else Action.END_PLAY, rest[1])
        if method == "PATCH":
            action = Action.TRICKLE_PUBLISH if kind == "whip" else Action.TRICKLE_PLAY
            return Route(action, rest[1], _SESSION_ALLOW)
        return Route(Action.METHOD_NOT_ALLOWED, allow=_SESSION_ALLOW)
    if kind == "whip" and (not rest or rest == [""]):
        if method == "POST":
            return Route(Action.PUBLISH)
        return Route(Action.METHOD_NOT_ALLOWED, allow=_POST_ALLOW)
    if len(rest) == 1 and _ID.fullmatch(rest[0]):
        if method == "POST":
            return Route(Action.PUBLISH if kind == "whip" else Action.PLAY, rest[0])
        return Route(Action.METHOD_NOT_ALLOWED, allow=_POST_ALLOW)
    return Route(Action.NOT_FOUND)


def session_location(kind: str, session_id: str) -> str:
    return f"/{kind}/session/{session_id}"


_PUBLISH_STATUS = {
    PublishDenial.INVALID_KEY: 401,
    PublishDenial.STREAM_DISABLED: 403,
    PublishDenial.TENANT_SUSPENDED: 403,
    PublishDenial.QUOTA_EXCEEDED: 403,
    PublishDenial.ALREADY_LIVE: 409,
    PublishDenial.UNAVAILABLE: 503,
}
_PLAY_STATUS = {
    PlayDenial.UNKNOWN: 404,
    PlayDenial.TOKEN_REQUIRED: 401,
    PlayDenial.TENANT_SUSPENDED: 403,
    PlayDenial.UNAVAILABLE: 503,
}


def publish_denial_status(denial: PublishDenial) -> int:
    return _PUBLISH_STATUS.get(denial, 403)


def play_denial_status(denial: PlayDenial) -> int:
    return _PLAY_STATUS.get(denial, 403)
