"""EventBatch messages decoded and written by the warehouse engine itself, in C++. Pure:
schema text, framing and SQL; the adapter runs the statements.

Why: the engine decodes with the GIL released, so the process's event loop keeps running
while it works, and it decodes faster than Python does (docs/benchmarks-history.md, 2026-12-04).

ClickHouse reads Protocol Buffers (the `Protobuf` input format) and fills columns by field
name, nested messages as `parent.child` and repeated ones as arrays. Each bus message
becomes one row of a `Batch` message (an EventBatch plus two framing fields: the message's
tenant header and its index); `decode_sql` LEFT ARRAY JOINs the events, computes the
`events` table's columns, and beside each row its message's problem (batch_problems.py,
checked in the Python decoding's order). The columns' expressions are generated from
event_columns.py, the table the Python decoding's readers are generated from too. A write
then runs three statements: the decoding into a temporary Memory table (`staging_sql`,
the protobuf read once), a scan of it (`scan_sql`: problem messages, ids the dedup index
holds, counts) and an insert from it (`insert_sql`).

A message read for every kind fills every kind's columns, of which an event uses one
kind's: filling the others with zero values was about half of the decoding. So the
ingress names the kinds of each message's events in a header (bus/base.py KINDS_HEADER),
and the decoding reads each group of messages with the same kinds for those kinds' fields
only, the others' columns being constant zero values (`reads_of`, at most MAX_READS reads
per batch, put together with UNION ALL; docs/benchmarks-history.md, 2026-12-05). A message
without the header is read for every kind; one holding an event of a kind its header
leaves out makes the engine refuse the batch (its fields would be lost).

The schema the engine reads is generated from the compiled descriptors, so it cannot
drift from the contract: enums become int32 (their wire type), `google.protobuf.Timestamp`
a local message of the same wire shape, the `payload` oneof stays a oneof so that
`input_format_protobuf_oneof_presence` names the member each event carries. The oneof's
members' fields are summed or concatenated per column: only one member is set per event,
the others read as zero values.

A message that is not an EventBatch at all makes the engine refuse the whole batch; the
caller then decodes that batch in Python, which finds the culprit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from tidecast.events.v1 import events_pb2 as ev

from data_plane.warehouse import batch_problems
from data_plane.warehouse.base import WarehouseError
from data_plane.warehouse.event_columns import (
    COLUMNS,
    END_REASONS,
    ENVELOPE,
    PROTOCOLS,
    SCHEMA,
    Fill,
    Rule,
    fills_of,
    largest,
)
from data_plane.warehouse.event_rows import UUID_PATTERN
from data_plane.warehouse.viewer_counts import VIEWER_KINDS

#: Field numbers of the framing fields appended to each message (EventBatch has only 1).
TENANT_FIELD = 1000
INDEX_FIELD = 1001

_SCALARS: dict[int, str] = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_BOOL: "bool",
}


def _nested(field: FieldDescriptor) -> Descriptor:
    message = field.message_type
    if message is None:
        raise TypeError(f"{field.full_name} is no message field")
    return message


def _message_text(message: Descriptor, emitted: dict[str, list[str]]) -> None:
    """Appends `message` and the messages it uses to `emitted`, dependencies first."""
    lines: list[str] = []
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            nested = _nested(field)
            if nested.name not in emitted:
                _message_text(nested, emitted)
            type_name = nested.name
        elif field.type == FieldDescriptor.TYPE_ENUM:
            type_name = "int32"
        else:
            type_name = _SCALARS[field.type]
        label = "repeated " if field.is_repeated else ""
        line = f"{label}{type_name} {field.name} = {field.number};"
        if field.containing_oneof is None:
            lines.append(f"  {line}")
    for oneof in message.oneofs:
        lines.append(f"  oneof {oneof.name} {{")
        for field in oneof.fields:
            lines.append(f"    {_nested(field).name} {field.name} = {field.number};")
        lines.append("  }")
    emitted[message.name] = [f"message {message.name} {{", *lines, "}"]


def engine_schema() -> str:
    """The .proto text the engine reads: Event and its types, flattened into one file,
    and `Batch`, an EventBatch with the framing fields."""
    emitted: dict[str, list[str]] = {}
    _message_text(ev.Event.DESCRIPTOR, emitted)
    batch = [
        "message Batch {",
        f"  repeated Event {ev.EventBatch.DESCRIPTOR.fields[0].name} = 1;",
        f"  string header_tenant = {TENANT_FIELD};",
        f"  uint32 message_index = {INDEX_FIELD};",
        "}",
    ]
    return "\n".join(
        ['syntax = "proto3";', *(line for m in emitted.values() for line in m), *batch]
    )


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_TENANT_TAG = _varint(TENANT_FIELD << 3 | 2)
_INDEX_TAG = _varint(INDEX_FIELD << 3 | 0)


def framed(payloads: Sequence[tuple[bytes, str]], indexes: Sequence[int] | None = None) -> bytes:
    """Messages (value, tenant header) -> the engine's input: each value with the framing
    fields appended (protobuf merges concatenated messages), prefixed by its length. With
    `indexes`, only those messages, each framed with its index."""
    parts: list[bytes] = []
    chosen = range(len(payloads)) if indexes is None else indexes
    for index in chosen:
        value, tenant = payloads[index]
        tenant_bytes = tenant.encode()
        row = b"".join(
            (
                value,
                _TENANT_TAG,
                _varint(len(tenant_bytes)),
                tenant_bytes,
                _INDEX_TAG,
                _varint(index),
            )
        )
        parts.append(_varint(len(row)))
        parts.append(row)
    return b"".join(parts)


def _map_literal(names: dict[int, str]) -> str:
    keys = ", ".join(str(number) for number in names)
    values = ", ".join(f"'{name}'" for name in names.values())
    return f"[{keys}], [{values}]"


#: ClickHouse types of the protobuf scalars the SQL reads (enums as their wire type).
_INPUT_TYPES: dict[int, str] = {
    FieldDescriptor.TYPE_STRING: "String",
    FieldDescriptor.TYPE_UINT64: "UInt64",
    FieldDescriptor.TYPE_UINT32: "UInt32",
    FieldDescriptor.TYPE_INT64: "Int64",
    FieldDescriptor.TYPE_INT32: "Int32",
    FieldDescriptor.TYPE_DOUBLE: "Float64",
    FieldDescriptor.TYPE_BOOL: "UInt8",
    FieldDescriptor.TYPE_ENUM: "Int32",
}


def _input_columns() -> dict[str, str]:
    """The input columns: every field path the SQL reads (an array per message for the
    events' fields): the envelope's fields (event_columns.ENVELOPE) and every field of
    the payload members."""
    payload = ev.Event.DESCRIPTOR.oneofs_by_name["payload"]
    kinds = ", ".join(f"'{field.name}' = {field.number}" for field in payload.fields)
    columns: dict[str, str] = {"header_tenant": "String", "message_index": "UInt32"}

    def add(prefix: str, message: Descriptor) -> None:
        for field in message.fields:
            path = f"{prefix}.{field.name}"
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                add(path, _nested(field))
            else:
                columns[path] = f"Array({_INPUT_TYPES[field.type]})"

    # In the contract's order, the oneof (the payload member an event carries) last.
    read = {fill.field for fill in ENVELOPE}
    for field in ev.Event.DESCRIPTOR.fields:
        if field.containing_oneof is not None or field.name not in read:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            add(f"events.{field.name}", _nested(field))
        else:
            columns[f"events.{field.name}"] = f"Array({_INPUT_TYPES[field.type]})"
    if payload.name in read:
        columns[f"events.{payload.name}"] = f"Array(Enum8('' = 0, {kinds}))"
    for field in payload.fields:
        add(f"events.{field.name}", _nested(field))
    return columns


_INPUT = _input_columns()
#: The members of the `payload` oneof: the event kinds.
KINDS = frozenset(field.name for field in ev.Event.DESCRIPTOR.oneofs_by_name["payload"].fields)
#: Query settings beside the schema file's.
_SETTINGS: dict[str, str | int] = {"input_format_protobuf_oneof_presence": 1}
#: Reads of one batch at most: messages of rarer kind sets are read together.
MAX_READS = 3


def _kind_of(column: str) -> str | None:
    """The payload member an input column belongs to (None: the event's own fields)."""
    parts = column.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in KINDS else None


def _read_columns(kinds: frozenset[str]) -> list[str]:
    return [name for name in _INPUT if _kind_of(name) in (None, *kinds)]


def structure(kinds: frozenset[str] = KINDS) -> str:
    """The `structure` argument of the table function reading `framed` bytes: the events'
    own fields and those of the `kinds` given. The engine then skips the other kinds'
    fields instead of filling their columns with zero values for every event (for a batch
    of one kind, half the decoding's time)."""
    return ", ".join(f"`{name}` {_INPUT[name]}" for name in _read_columns(kinds))


def read_kinds(header: bytes | None) -> frozenset[str] | None:
    """A message's kinds header (bus/base.py KINDS_HEADER) -> the kinds it names, or None
    (read every kind) without one or when it names a kind this build does not know."""
    if header is None:
        return None
    kinds = frozenset(header.decode(errors="replace").split(",")) - {""}
    return kinds if kinds <= KINDS else None


def reads_of(kinds: Sequence[frozenset[str] | None]) -> list[tuple[frozenset[str], list[int]]]:
    """Messages' kinds (None: unknown) -> the reads of a batch: (kinds to read, indexes of
    the messages read with them). One read per kind set, at most MAX_READS: each read is
    planned and run on its own, so the rarest sets share the last, with their union."""
    by_set: dict[frozenset[str], list[int]] = {}
    for index, named in enumerate(kinds):
        by_set.setdefault(KINDS if named is None else named, []).append(index)
    reads = sorted(by_set.items(), key=lambda read: -len(read[1]))
    if len(reads) > MAX_READS:
        rest = reads[MAX_READS - 1 :]
        union = frozenset().union(*(named for named, _ in rest))
        merged = sorted(index for _, indexes in rest for index in indexes)
        reads = [*reads[: MAX_READS - 1], (union, merged)]
    return reads


def _sum(*paths: str) -> str:
    return " + ".join(paths)


def _concat(*paths: str) -> str:
    return "concat(" + ", ".join(paths) + ")"


#: The ClickHouse type of each Arrow type of the `events` columns.
_COLUMN_TYPES: dict[pa.DataType, str] = {
    pa.string(): "String",
    pa.uint64(): "UInt64",
    pa.uint32(): "UInt32",
    pa.uint16(): "UInt16",
    pa.uint8(): "UInt8",
    pa.float32(): "Float32",
}


def _element_type(column: str) -> str:
    """The type of one value of an input column (an Array of it)."""
    return _INPUT[column].removeprefix("Array(")[:-1]


def _envelope_sql(fill: Fill, f: Callable[[str], str]) -> str:
    match fill.rule:
        case Rule.COPY:
            return f(fill.field)
        case Rule.KIND:
            return f"toString({f(fill.field)})"
        case Rule.MILLIS:
            seconds, nanos = f(f"{fill.field}.seconds"), f(f"{fill.field}.nanos")
            return f"fromUnixTimestamp64Milli({seconds} * 1000 + intDiv({nanos}, 1000000), 'UTC')"
        case Rule.PROTOCOL | Rule.END_REASON | Rule.CLAMP | Rule.FLAG:
            raise ValueError(f"{fill.rule} fills payload columns only")


def _payload_sql(column: str, f: Callable[[str], str]) -> str:
    """`column` over the payload members that fill it: their fields combined (only one
    member is set per event, the others read as zero values), then the rule applied once."""
    target = _COLUMN_TYPES[SCHEMA.field(column).type]
    fills = fills_of(column)
    if not fills:
        return f"defaultValueOfTypeName('{target}')"
    paths = [f"{kind}.{fill.field}" for kind, fill in fills]
    source = {_element_type(f"events.{path}") for path in paths}
    if len(source) != 1:
        raise ValueError(f"the fields filling {column} differ in type: {sorted(source)}")
    read = [f(path) for path in paths]
    value = read[0] if len(read) == 1 else (_concat if "String" in source else _sum)(*read)
    match fills[0][1].rule:
        case Rule.COPY:
            return value if source == {target} else f"to{target}({value})"
        case Rule.PROTOCOL:
            return f"transform({value}, {_map_literal(PROTOCOLS)}, '')"
        case Rule.END_REASON:
            return f"transform({value}, {_map_literal(END_REASONS)}, '')"
        case Rule.CLAMP:
            return f"to{target}(least({value}, {largest(column)}))"
        case Rule.FLAG:
            return f"to{target}({value})"
        case Rule.KIND | Rule.MILLIS:
            raise ValueError(f"{column}: {fills[0][1].rule} fills envelope columns only")


def _columns(kinds: frozenset[str]) -> dict[str, str]:
    """The `events` columns (event_columns.SCHEMA order) as expressions over one event `e`
    of a read of `kinds`, generated from event_columns' table."""

    def f(path: str) -> str:
        """A field of the event: its column, or its type's zero value when the read skips
        its kind."""
        column = f"events.{path}"
        kind = _kind_of(column)
        if kind is not None and kind not in kinds:
            return f"defaultValueOfTypeName('{_element_type(column)}')"
        return f"`e.{path}`"

    envelope = {fill.column: fill for fill in ENVELOPE}
    return {
        name: _envelope_sql(envelope[name], f) if name in envelope else _payload_sql(name, f)
        for name in COLUMNS
    }


#: A message's problem (batch_problems.py), checked in the order the Python decoding
#: checks them.
_PROBLEM = f"""multiIf(
    empty(`events.event_id`), '{batch_problems.EMPTY_BATCH}',
    arrayExists(t -> t != header_tenant, `events.tenant_id`),
        '{batch_problems.FOREIGN_TENANT}',
    arrayExists((i, p) -> length(i) != 36 OR p = '', `events.event_id`, `events.payload`),
        '{batch_problems.NO_PAYLOAD_OR_BAD_ID}',
    NOT arrayAll(i -> match(i, '{UUID_PATTERN}'), `events.event_id`),
        '{batch_problems.UNDECODABLE}: malformed event id',
    '')"""


#: A read of the batch: the table function reading `framed` bytes of some of its messages
#: (`file_source`), and the kinds it reads.
Read = tuple[str, frozenset[str]]


def _read_sql(source: str, kinds: frozenset[str], *, canonical_ids: bool) -> str:
    columns = _columns(kinds)
    if canonical_ids:
        columns["event_id"] = f"lower({columns['event_id']})"
    selected = ",\n    ".join(f"{expr} AS `{name}`" for name, expr in columns.items())
    arrays = ", ".join(
        f"`{name}` AS `e.{name.removeprefix('events.')}`"
        for name in _read_columns(kinds)
        if name.startswith("events.")
    )
    named = ""
    if kinds != KINDS:
        # A message holding an event of a kind its header leaves out would lose that
        # event's fields: the engine refuses the batch, and Python decodes it.
        listed = ", ".join(f"'{kind}'" for kind in sorted(kinds | {""}))
        named = (
            f"WHERE NOT throwIf(arrayExists(p -> p NOT IN ({listed}), `events.payload`),"
            " 'an event of a kind its message does not name')"
        )
    # Built from the module's constant expressions and `source`, never from data.
    return f"""
SELECT
    message_index AS _message,
    _problem,
    {selected}
FROM (SELECT *, {_PROBLEM} AS _problem FROM {source} {named})
LEFT ARRAY JOIN {arrays}
"""  # noqa: S608


def decode_sql(reads: Sequence[Read], *, canonical_ids: bool = False) -> str:
    """The query over the reads (table functions reading `framed` bytes in the `Protobuf`
    format, see `file_source`, with `settings_clause`): the `events` columns of every
    event, with its message's index (`_message`) and problem (`_problem`, empty if none);
    event ids lower-cased when `canonical_ids` (what the dedup index holds)."""
    selects = [_read_sql(source, kinds, canonical_ids=canonical_ids) for source, kinds in reads]
    if len(selects) == 1:
        return selects[0]
    return "SELECT * FROM (" + "UNION ALL".join(selects) + ")"  # noqa: S608


_VIEWER_KINDS = "(" + ", ".join(f"'{kind}'" for kind in VIEWER_KINDS.to_pylist()) + ")"


#: The session's table holding the batch being written, decoded once.
STAGING = "ingest_batch"


def staging_sql(reads: Sequence[Read]) -> str:
    """Fills STAGING (a temporary Memory table) with the decoded batch."""
    return f"CREATE TEMPORARY TABLE {STAGING} ENGINE = Memory AS " + decode_sql(
        reads, canonical_ids=True
    )


def scan_sql() -> str:
    """What the write needs to know before it inserts STAGING, in one result of rows
    (what, n, text, first_ms, last_ms, stream):

    - ('problem', message index, problem, 0, 0, '') per message with a problem;
    - ('known', 0, id, 0, 0, '') per event id of the others that the dedup index holds
      (looked up in the hours the batch spans);
    - ('viewers', 0, tenant, 0, 0, stream) per stream with viewer events;
    - ('stats', events, distinct ids, viewer events' first and last time in ms, ''), once.
    """
    valid = f"{STAGING} WHERE _problem = ''"
    at = "toUnixTimestamp64Milli(occurred_at)"
    return f"""
SELECT 'problem' AS what, toInt64(_message) AS n, any(_problem) AS text,
       toInt64(0) AS first_ms, toInt64(0) AS last_ms, '' AS stream
FROM {STAGING} WHERE _problem != '' GROUP BY _message
UNION ALL
SELECT 'known', toInt64(0), toString(event_id), toInt64(0), toInt64(0), ''
FROM event_ids_by_hour
WHERE toStartOfHour(occurred_at)
      BETWEEN (SELECT toStartOfHour(min(occurred_at)) FROM {valid})
          AND (SELECT toStartOfHour(max(occurred_at)) FROM {valid})
  AND event_id IN (SELECT toUUID(event_id) FROM {valid})
UNION ALL
SELECT DISTINCT 'viewers', toInt64(0), tenant_id, toInt64(0), toInt64(0), stream_id
FROM {valid} AND kind IN {_VIEWER_KINDS}
UNION ALL
SELECT 'stats', toInt64(count()), toString(uniqExact(event_id)),
       toInt64(minIf({at}, kind IN {_VIEWER_KINDS})), toInt64(maxIf({at}, kind IN {_VIEWER_KINDS})),
       ''
FROM {valid}
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class Scan:
    problems: list[tuple[int, str]]
    known: list[str]
    events: int
    distinct: int
    #: First and last time (epoch ms) of the viewer events, or None without any.
    viewer_span: tuple[int, int] | None
    #: (tenant, stream) of the viewer events.
    viewer_streams: frozenset[tuple[str, str]]


def read_scan(rows: Sequence[tuple[object, ...]]) -> Scan:
    problems: list[tuple[int, str]] = []
    known: list[str] = []
    streams: set[tuple[str, str]] = set()
    events = distinct = 0
    span: tuple[int, int] | None = None
    for what, n, text, first_ms, last_ms, stream in rows:
        if what == "problem":
            problems.append((int(str(n)), str(text)))
        elif what == "known":
            known.append(str(text))
        elif what == "viewers":
            streams.add((str(text), str(stream)))
        elif what == "stats":
            events, distinct = int(str(n)), int(str(text))
            if events and int(str(last_ms)) > 0:
                span = (int(str(first_ms)), int(str(last_ms)))
    return Scan(sorted(problems), known, events, distinct, span, frozenset(streams))


def insert_sql(insert_settings: str, scan: Scan) -> str:
    """Inserts the events of STAGING's messages without a problem whose ids are neither
    in the `known` parameter nor earlier in the batch (the filters the scan shows to be
    needed: usually neither is)."""
    names = ", ".join(f"`{name}`" for name in SCHEMA.names)
    known = " AND event_id NOT IN {known:Array(String)}" if scan.known else ""
    repeated = "LIMIT 1 BY event_id" if scan.distinct < scan.events else ""
    return f"""
INSERT INTO events ({names}) SETTINGS {insert_settings}
SELECT {names} FROM {STAGING}
WHERE _problem = ''{known}
{repeated}
"""  # noqa: S608


class BatchRefusedError(WarehouseError):
    """The engine could not read the batch (a message that is no EventBatch); nothing was
    written. Decoding it in Python finds the culprit."""


@dataclass(frozen=True, slots=True)
class EngineWrite:
    """What the engine's write of a batch of messages did."""

    inserted: int
    duplicates: int
    problems: list[tuple[int, str]]
    viewer_span: tuple[int, int] | None
    #: (tenant, stream) of the viewer events written or already known.
    viewer_streams: frozenset[tuple[str, str]]


@runtime_checkable
class EngineWriting(Protocol):
    """A warehouse whose engine decodes and writes EventBatch messages itself."""

    async def write_event_batches(
        self,
        payloads: Sequence[tuple[bytes, str]],
        kinds: Sequence[frozenset[str] | None] | None = None,
    ) -> EngineWrite: ...


def split(table: pa.Table) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The result of `decode_sql` -> (rows in event_rows.SCHEMA, (message index, problem)
    of the messages with a problem, in index order)."""
    bad = pc.not_equal(table["_problem"], "")
    problems: set[tuple[int, str]] = set()
    if pc.any(bad).as_py():
        flagged = table.filter(bad)
        problems = set(
            zip(flagged["_message"].to_pylist(), flagged["_problem"].to_pylist(), strict=True)
        )
        table = table.filter(pc.invert(bad))
    rows = table.select(list(SCHEMA.names)).cast(SCHEMA)
    return rows, sorted((int(index), str(text)) for index, text in problems)


def literal(text: str) -> str:
    """`text` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def file_source(path: str, kinds: frozenset[str] = KINDS) -> str:
    """The table function reading a file of `framed` bytes for the fields of `kinds`
    (chDB reads local files)."""
    return f"file({literal(path)}, 'Protobuf', {literal(structure(kinds))})"


def settings_clause(schema_file: str) -> str:
    """The query's settings, with `engine_schema()` in `schema_file` (an absolute path:
    chDB reads it like clickhouse-local; a schema passed as a string would be cached in
    a `__cache__` directory under the process's working directory)."""
    settings = {"format_schema": f"{schema_file}:Batch", **_SETTINGS}
    return "SETTINGS " + ", ".join(
        f"{name} = {literal(value) if isinstance(value, str) else value}"
        for name, value in settings.items()
    )
