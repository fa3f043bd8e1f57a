"""`UtcDateTime` round trips: what SQLite is given as text comes back as the same instant
in UTC, as SQLAlchemy's own DATETIME parse would read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from control_plane.db.base import UtcDateTime

DIALECT = sqlite.dialect()
COLUMN = UtcDateTime().dialect_impl(DIALECT)

zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones
)


@given(instants)
def test_sqlite_text_reads_back_as_the_same_utc_instant(value: datetime) -> None:
    bind = COLUMN.bind_processor(DIALECT)
    read = COLUMN.result_processor(DIALECT, None)
    assert bind is not None and read is not None
    stored = bind(value)
    assert isinstance(stored, str)
    back = read(stored)
    assert back == value and back.tzinfo is UTC
    # SQLAlchemy's own reading of the same text, made UTC, is the same datetime.
    plain = DateTime().dialect_impl(DIALECT).result_processor(DIALECT, None)
    assert plain is not None
    naive = plain(stored)
    assert isinstance(naive, datetime)
    assert back == naive.replace(tzinfo=UTC)


def test_sqlite_reads_current_timestamp_text_and_nulls() -> None:
    read = COLUMN.result_processor(DIALECT, None)
    assert read is not None
    assert read("2026-12-04 13:45:06") == datetime(2026, 12, 4, 13, 45, 6, tzinfo=UTC)
    assert read(None) is None
