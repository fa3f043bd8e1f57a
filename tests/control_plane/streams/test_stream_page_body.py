"""The hand-built stream list body is byte for byte what `Page[StreamPublic]` makes."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from control_plane.http.schemas import Page
from control_plane.streams.page_body import stream_page_body
from control_plane.streams.schemas import StreamPublic
from control_plane.streams.urls import playback_url

BASE = "http://edge.test/"

times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
rows = st.tuples(
    st.uuids().map(str),
    st.uuids().map(str),
    st.text(max_size=30),  # names: any Unicode, control characters, quotes
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=24),
    st.booleans(),
    st.sampled_from(["", "720p", "source"]),
    st.booleans(),
    st.booleans(),
    st.none() | st.uuids().map(str),
    times,
    times,
)


def pydantic_page(listed: list[tuple[Any, ...]], limit: int) -> bytes:
    shown = listed[:limit]
    page = Page[StreamPublic](
        items=[
            StreamPublic(
                id=r[0],
                tenant_id=r[1],
                name=r[2],
                playback_id=r[3],
                playback_url=playback_url(BASE, r[3]),
                recording=r[4],
                transcode_profile=r[5],
                private_playback=r[6],
                enabled=r[7],
                live=r[8] is not None,
                created_at=r[9],
                updated_at=r[10],
            )
            for r in shown
        ],
        next_cursor=shown[-1][0] if len(listed) > limit and shown else None,
    )
    return page.model_dump_json().encode()


@given(listed=st.lists(rows, max_size=6), limit=st.integers(min_value=1, max_value=5))
def test_body_matches_the_pydantic_page_for_any_rows(
    listed: list[tuple[Any, ...]], limit: int
) -> None:
    body = stream_page_body(listed, limit, partial(playback_url, BASE))
    assert body == pydantic_page(listed, limit)


def test_next_cursor_is_the_last_shown_id_only_when_a_row_is_left_over() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    listed = [
        (f"s{i}", "t", "n", f"p{i}", False, "", False, True, None, now, now) for i in range(3)
    ]
    url = partial(playback_url, BASE)
    assert b'"next_cursor":"s1"' in stream_page_body(listed, 2, url)
    assert b'"next_cursor":null' in stream_page_body(listed, 3, url)
    assert stream_page_body([], 50, url) == b'{"items":[],"next_cursor":null}'
