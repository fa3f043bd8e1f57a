"""The page read behind `GET /v1/tenants/{tenant_id}/streams`, the busiest read of the API.

It runs as one Core select on a `DirectReader` (see `db/direct_reader.py` for why), not
through a session and the ORM. Keyset pagination by id: the select always carries
`id > :after`, with "" for the first page (ids are never empty), so one compiled
statement serves every page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Dialect

from control_plane.db.direct_query import DirectQuery
from control_plane.db.direct_reader import DirectReader
from control_plane.streams.models import Stream

#: The columns of a listed row, in this order (see `streams/page_body.py`).
LISTED_COLUMNS = (
    Stream.id,
    Stream.tenant_id,
    Stream.name,
    Stream.playback_id,
    Stream.recording,
    Stream.transcode_profile,
    Stream.private_playback,
    Stream.enabled,
    Stream.live_node_id,
    Stream.created_at,
    Stream.updated_at,
)


def tenant_page_statement() -> Select[*tuple[Any, ...]]:
    return (
        select(*LISTED_COLUMNS)
        .where(Stream.tenant_id == bindparam("tenant_id"), Stream.id > bindparam("after"))
        .order_by(Stream.id)
        .limit(bindparam("limit"))
    )


class StreamListing:
    def __init__(self, reader: DirectReader, dialect: Dialect) -> None:
        self._reader = reader
        self._query = DirectQuery.compile(tenant_page_statement(), dialect)

    async def tenant_page(
        self, tenant_id: str, *, after: str | None, limit: int
    ) -> list[Sequence[Any]]:
        """Up to `limit` rows of the tenant's streams with ids after `after`, by id."""
        return await self._reader.fetch(
            self._query, {"tenant_id": tenant_id, "after": after or "", "limit": limit}
        )
