"""How CLI results are shown: JSON for scripts, aligned text for people."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import typer


def printable(value: object) -> str:
    """`value` as text with control and format characters shown as escapes: names stored
    before the API refused them must not ring the terminal's bell or rewrite its lines."""
    return "".join(
        c
        if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") or c == "\u200d"
        else c.encode("unicode_escape").decode("ascii")
        for c in str(value)
    )


def emit(data: Any, *, as_json: bool, fields: Sequence[str] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if isinstance(data, list):
        _table(data, fields)
        return
    if isinstance(data, dict):
        keys = [k for k in (fields or data.keys()) if k in data]
        width = max((len(k) for k in keys), default=0)
        for key in keys:
            typer.echo(f"{key.ljust(width)}  {printable(data[key])}")
        return
    typer.echo(printable(data))


def _table(rows: list[dict[str, Any]], fields: Sequence[str] | None) -> None:
    if not rows:
        typer.echo("(none)")
        return
    columns = list(fields or rows[0].keys())
    widths = {c: max(len(c), *(len(printable(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        typer.echo("  ".join(printable(row.get(c, "")).ljust(widths[c]) for c in columns))
