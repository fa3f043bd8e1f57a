"""The analytics warehouse: ClickHouse SQL over two transports.

Adapters are thin: they run statements, run parameterized queries and bulk-insert Arrow
tables. Everything above them (schema migrations, the deduplicating event sink, the
analytics queries) is written once against this interface, in ClickHouse SQL that runs
unchanged on chDB and on a ClickHouse server.

Query parameters use ClickHouse's server-side binding, `{name:Type}` in the SQL and the
values passed apart, so no SQL is ever built from user strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from data_plane.errors import DataPlaneError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class Warehouse(Protocol):
    async def execute(self, sql: str, parameters: Mapping[str, object] | None = None) -> None:
        """Runs one statement that returns nothing (DDL, INSERT ... SELECT, OPTIMIZE)."""
        ...

    async def query(self, sql: str, parameters: Mapping[str, object] | None = None) -> QueryResult:
        """Runs one SELECT with server-side bound `{name:Type}` parameters."""
        ...

    async def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Inserts the rows of `data` (column names = table columns) in one block."""
        ...

    async def close(self) -> None: ...


class WarehouseError(DataPlaneError):
    """The warehouse refused a statement or could not be reached."""


def ensure_columns(data: pa.Table, expected: Sequence[str]) -> None:
    missing = [name for name in expected if name not in data.column_names]
    if missing:
        raise WarehouseError(f"insert is missing columns {missing}")
