"""Validated time ranges for analytics queries. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from data_plane.errors import DataPlaneError

#: The times a query may name. The warehouse stores instants as DateTime64 and compares
#: them through DateTime (seconds since 1970 as UInt32, up to 2106), and the API speaks
#: Unix milliseconds: outside this range a query cannot mean anything, and Python's date
#: arithmetic overflows near years 1 and 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class InvalidRangeError(DataPlaneError, ValueError):
    """A query's time range the API refuses (`field`, why)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def from_ms(cls, start_ms: int, end_ms: int) -> TimeRange:
        return cls(
            datetime.fromtimestamp(start_ms / 1000, UTC), datetime.fromtimestamp(end_ms / 1000, UTC)
        )

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _within_bounds(field: str, value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise InvalidRangeError(
            field, f"must be from {_iso(EARLIEST)} up to (not including) {_iso(LATEST)}"
        )
    return value


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    default: timedelta,
    max_span: timedelta,
    step: timedelta | None = None,
) -> TimeRange:
    """Fills defaults (the last `default` up to now), checks order and span, and aligns to
    `step` so every bucket of the answer is whole."""
    end_at = _within_bounds("end", _utc(end) if end is not None else _utc(now))
    if start is not None:
        start_at = _within_bounds("start", _utc(start))
    else:
        start_at = max(EARLIEST, end_at - default)
    if start_at >= end_at:
        raise InvalidRangeError("start", "must be before end")
    if end_at - start_at > max_span:
        raise InvalidRangeError("end", f"range longer than {max_span}")
    if step is not None:
        seconds = int(step.total_seconds())
        start_at = datetime.fromtimestamp(int(start_at.timestamp()) // seconds * seconds, UTC)
        end_s = -(-int(end_at.timestamp()) // seconds) * seconds
        end_at = datetime.fromtimestamp(end_s, UTC)
    return TimeRange(start_at, end_at)
