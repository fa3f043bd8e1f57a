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


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (None, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "end"),
        (None, datetime(1, 1, 1, 0, 30, tzinfo=UTC), "end"),
        (datetime(1, 1, 1, tzinfo=UTC), NOW, "start"),
        (NOW, datetime(2100, 1, 1, tzinfo=UTC), "end"),
    ],
)
def test_times_outside_what_the_warehouse_holds_name_the_field_and_the_range(
    start: datetime | None, end: datetime, field: str
) -> None:
    with pytest.raises(InvalidRangeError) as raised:
        resolve_range(
            start,
            end,
            now=NOW,
            default=timedelta(hours=1),
            max_span=timedelta(days=1),
            step=timedelta(minutes=1),
        )
    assert raised.value.field == field
    assert "1970-01-01T00:00:00Z" in raised.value.reason
    assert "2100-01-01T00:00:00Z" in raised.value.reason


def test_a_default_start_stops_at_the_earliest_time() -> None:
    window = resolve_range(
        None,
        datetime(1970, 1, 1, 0, 30, tzinfo=UTC),
        now=NOW,
        default=timedelta(hours=1),
        max_span=timedelta(days=1),
    )
    assert window.start == datetime(1970, 1, 1, tzinfo=UTC)
