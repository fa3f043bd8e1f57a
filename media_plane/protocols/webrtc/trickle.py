"""Trickle ICE fragments (RFC 8840 `application/trickle-ice-sdpfrag`, as WHIP/WHEP PATCH
bodies, RFC 9725 4.3). Pure.

A fragment carries the ICE credentials it belongs to, then per media section (`m=` and
`a=mid:`) `a=candidate:` lines and possibly `a=end-of-candidates`. With BUNDLE every
candidate serves the one transport, so the media section a candidate came in is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_plane.protocols.webrtc.errors import OfferError

__all__ = ["MAX_FRAGMENT_BYTES", "TrickleFragment", "parse_fragment"]

MAX_FRAGMENT_BYTES = 16 * 1024
_MAX_CANDIDATES = 64


@dataclass(frozen=True, slots=True)
class TrickleFragment:
    ufrag: str
    pwd: str
    #: Candidate attribute values (what follows `a=candidate:`).
    candidates: tuple[str, ...]
    end_of_candidates: bool


def parse_fragment(body: bytes) -> TrickleFragment:
    """Parse a PATCH body; raises `OfferError` (a 400) when it is not a usable fragment."""
    if len(body) > MAX_FRAGMENT_BYTES:
        raise OfferError("trickle ICE fragment too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OfferError("trickle ICE fragment is not UTF-8") from exc
    ufrag = pwd = ""
    candidates: list[str] = []
    end = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("a=candidate:"):
            value = line[len("a=candidate:") :]
            if len(value.split()) < 8:
                raise OfferError(f"malformed candidate: {value!r}")
            candidates.append(value)
        elif line == "a=end-of-candidates":
            end = True
    if not ufrag:
        raise OfferError("trickle ICE fragment lacks a=ice-ufrag")
    if len(candidates) > _MAX_CANDIDATES:
        raise OfferError("too many candidates in one fragment")
    return TrickleFragment(ufrag, pwd, tuple(candidates), end)
