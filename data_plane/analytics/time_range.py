"""Validated time ranges for analytics queries. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from data_plane.errors import DataPlaneError


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
    end_at = _utc(end) if end is not None else _utc(now)
    start_at = _utc(start) if start is not None else end_at - default
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
