"""A live HLS media playlist (RFC 8216) over a sliding window of segments.

Pure: no I/O, no clocks. The owner appends segments as they close and renders the
playlist text after each change.

Rules this module keeps (RFC 8216 section numbers):

- `#EXT-X-TARGETDURATION` is the longest `#EXTINF` ever listed rounded to the nearest
  integer, the bound 4.3.3.1 sets (a 2.001 s segment keeps a target of 2, not 3); it never
  decreases (6.2.1 forbids changing it; it grows only when a segment longer than the
  target is listed, which the segmenter avoids where the publisher's keyframes allow).
- `#EXT-X-MEDIA-SEQUENCE` counts the segments that have left the window (6.2.2).
- `#EXT-X-DISCONTINUITY-SEQUENCE` counts the `#EXT-X-DISCONTINUITY` tags that have left
  the window (6.2.2).
- A segment leaves the window only while the remaining playlist still lasts at least three
  target durations (6.2.2), and never once `#EXT-X-ENDLIST` is written.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["LivePlaylist", "PlaylistSegment", "format_program_date_time", "nearest_integer"]

#: Floating-point EXTINF durations need protocol version 3 (RFC 8216, 7).
PLAYLIST_VERSION = 3


@dataclass(frozen=True, slots=True)
class PlaylistSegment:
    uri: str
    #: Seconds; listed with millisecond precision.
    duration: float
    #: Wall-clock time of the segment's first frame, seconds since the epoch.
    program_date_time: float
    #: First segment after a change of timestamps, encoding or publisher.
    discontinuity: bool = False


def format_program_date_time(epoch_seconds: float) -> str:
    """ISO 8601 with millisecond precision in UTC, as `#EXT-X-PROGRAM-DATE-TIME` wants."""
    millis = round(epoch_seconds * 1000)
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def _listed_duration(duration: float) -> float:
    # The duration a client reads: the value as printed with three decimals.
    return round(duration, 3)


def nearest_integer(seconds: float) -> int:
    """Rounded as RFC 8216 4.3.3.1 reads a duration: halves up (not to even)."""
    return math.floor(seconds + 0.5)


class LivePlaylist:
    """The window of segments a live media playlist lists, and its rendering."""

    def __init__(self, window: int = 6, *, min_target_duration: int = 1) -> None:
        if window < 1:
            raise ValueError("window must be at least one segment")
        self._window = window
        self._segments: deque[PlaylistSegment] = deque()
        self._media_sequence = 0
        self._discontinuity_sequence = 0
        self._target_duration = max(1, min_target_duration)
        self._ended = False

    @property
    def media_sequence(self) -> int:
        """Sequence number of the first listed segment."""
        return self._media_sequence

    @property
    def next_sequence(self) -> int:
        """Sequence number the next appended segment gets."""
        return self._media_sequence + len(self._segments)

    @property
    def discontinuity_sequence(self) -> int:
        return self._discontinuity_sequence

    @property
    def target_duration(self) -> int:
        return self._target_duration

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def segments(self) -> tuple[PlaylistSegment, ...]:
        return tuple(self._segments)

    def append(self, segment: PlaylistSegment) -> tuple[int, list[PlaylistSegment]]:
        """List a closed segment.

        Returns its media sequence number and the segments that left the window (the
        owner keeps those reachable a while longer, RFC 8216 6.2.2).
        """
        if segment.duration < 0:
            raise ValueError("segment duration must not be negative")
        sequence = self.next_sequence
        self._ended = False
        self._segments.append(segment)
        self._target_duration = max(
            self._target_duration, nearest_integer(_listed_duration(segment.duration))
        )
        return sequence, self._slide()

    def end(self) -> None:
        """Mark the stream finished: `#EXT-X-ENDLIST` follows the last segment."""
        self._ended = True

    def _slide(self) -> list[PlaylistSegment]:
        removed: list[PlaylistSegment] = []
        total = sum(_listed_duration(s.duration) for s in self._segments)
        floor = 3 * self._target_duration
        while len(self._segments) > self._window:
            first = self._segments[0]
            remaining = total - _listed_duration(first.duration)
            if remaining < floor:
                break
            self._segments.popleft()
            total = remaining
            self._media_sequence += 1
            if first.discontinuity:
                self._discontinuity_sequence += 1
            removed.append(first)
        return removed

    def render(self) -> bytes:
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{PLAYLIST_VERSION}",
            f"#EXT-X-TARGETDURATION:{self._target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{self._media_sequence}",
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuity_sequence}",
        ]
        for segment in self._segments:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(
                f"#EXT-X-PROGRAM-DATE-TIME:{format_program_date_time(segment.program_date_time)}"
            )
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(segment.uri)
        if self._ended:
            lines.append("#EXT-X-ENDLIST")
        lines.append("")
        return "\n".join(lines).encode("ascii")
