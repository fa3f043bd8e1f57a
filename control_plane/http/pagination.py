from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from control_plane.http.schemas import Page


class HasId(Protocol):
    @property
    def id(self) -> str: ...


Row = TypeVar("Row", bound=HasId)
Item = TypeVar("Item")


def make_page(rows: Sequence[Row], limit: int, convert: Callable[[Row], Item]) -> Page[Item]:
    """Rows were fetched with limit + 1 so we know whether another page exists."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page[Item](
        items=[convert(row) for row in rows],
        next_cursor=rows[-1].id if has_more and rows else None,
    )
