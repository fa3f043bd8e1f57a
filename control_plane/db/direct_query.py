"""A Core select compiled once for one dialect, to be run by a `DirectReader`.

The statement and each column's conversion stay SQLAlchemy's: the SQL text is what the
dialect compiles, and values pass through the dialect's result processors (SQLite's text
timestamps and 0/1 booleans, our `UtcDateTime`), so a direct read returns the values a
session would for the same select. Only the per-execution machinery is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class DirectQuery:
    sql: str
    #: Bind parameter names in the order the driver takes them.
    parameter_names: tuple[str, ...]
    #: Values the statement fixed itself (SQLite's `OFFSET 0` beside a bound LIMIT).
    fixed_values: Mapping[str, Any]
    #: (column index, processor) for the columns the dialect converts.
    processors: tuple[tuple[int, Processor], ...]

    @classmethod
    def compile(cls, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> DirectQuery:
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        processors: list[tuple[int, Processor]] = []
        for index, column in enumerate(statement.selected_columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                processors.append((index, processor))
        return cls(
            sql=compiled.string,
            parameter_names=tuple(compiled.positiontup),
            fixed_values={k: v for k, v in compiled.params.items() if v is not None},
            processors=tuple(processors),
        )

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional driver arguments; a missing value that the statement did not fix
        raises KeyError."""
        fixed = self.fixed_values
        return tuple(
            values[name] if name in values else fixed[name] for name in self.parameter_names
        )

    def convert(self, raw_rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """Driver rows -> rows of Python values; unchanged when nothing needs converting."""
        if not self.processors:
            return list(raw_rows)
        rows: list[Sequence[Any]] = []
        for raw in raw_rows:
            row = list(raw)
            for index, processor in self.processors:
                row[index] = processor(row[index])
            rows.append(row)
        return rows
