from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from control_plane.http.schemas import DisplayName, RequestModel

_PROFILE = r"^[a-z0-9][a-z0-9_-]*$"


class StreamCreate(RequestModel):
    name: DisplayName
    recording: bool = False
    #: Name of the transcode profile (ABR ladder); empty means passthrough.
    transcode_profile: str = Field(default="", max_length=64, pattern=r"^$|" + _PROFILE)
    #: Viewers need a signed playback token.
    private_playback: bool = False
    enabled: bool = True


class StreamUpdate(RequestModel):
    name: DisplayName | None = None
    recording: bool | None = None
    transcode_profile: str | None = Field(default=None, max_length=64, pattern=r"^$|" + _PROFILE)
    private_playback: bool | None = None
    enabled: bool | None = None


class StreamPublic(BaseModel):
    """A stream as listed and read. The stream key is never part of it."""

    id: str
    tenant_id: str
    name: str
    playback_id: str
    playback_url: str
    recording: bool
    transcode_profile: str
    private_playback: bool
    enabled: bool
    live: bool
    created_at: datetime
    updated_at: datetime


class StreamWithKeyPublic(StreamPublic):
    """Returned only when a key is created or rotated: the only time it is shown."""

    stream_key: str
    ingest_url: str
    #: WebRTC publish: POST an offer here with the stream key as Bearer token.
    whip_url: str
    #: WebRTC playback (with a playback token as Bearer token if the stream is private).
    whep_url: str


class PlaybackTokenCreate(RequestModel):
    ttl_seconds: int = Field(default=3600, ge=1)


class PlaybackTokenPublic(BaseModel):
    token: str
    expires_at: int
    playback_url: str
