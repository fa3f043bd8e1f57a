"""Analytics time ranges: defaults, order, span and alignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from data_plane.analytics.time_range import InvalidRangeError, resolve_range

NOW = datetime(2026, 11, 22, 12, 30, 15, tzinfo=UTC)


def test_defaults_to_the_last_period_aligned_to_whole_minutes() -> None:
    window = resolve_range(
        None,
        None,
        now=NOW,
        default=timedelta(hours=1),
        max_span=timedelta(days=1),
        step=timedelta(minutes=1),
    )
    assert window.start == datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 22, 12, 31, tzinfo=UTC)


def test_naive_times_are_utc_and_offsets_are_converted() -> None:
    start = datetime(2026, 11, 22, 13, 0, tzinfo=UTC).astimezone()  # any local offset
    window = resolve_range(
        start,
        NOW.replace(tzinfo=None) + timedelta(hours=1),
        now=NOW,
        default=timedelta(hours=1),
        max_span=timedelta(days=1),
    )
    assert window.start == datetime(2026, 11, 22, 13, 0, tzinfo=UTC)
    assert window.end.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (NOW, NOW, "start"),
        (NOW, NOW - timedelta(seconds=1), "start"),
        (NOW - timedelta(days=2), NOW, "end"),
    ],
)
def test_bad_ranges_name_the_field(start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(InvalidRangeError) as raised:
        resolve_range(start, end, now=NOW, default=timedelta(hours=1), max_span=timedelta(days=1))
    assert raised.value.field == field
