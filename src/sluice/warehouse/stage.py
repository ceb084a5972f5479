"""One group's stage table: its columns, and the SQL that fills them from the events.

A group (the tracks of one event name, the pages, the identifies, ...) gets one stage table per
chunk: a column per (source, type) its tables need, shared by them (a track's standard columns
serve `tracks` and its event table), and per column that SQL cannot always type a flag: the
value was there but came out NULL (columnar.py looks at those in Python). Batches then select
their columns from the stage.

The decoded first events of each group (`Group.sample`) also live here: they give new columns
their first value, which types them.
"""

from __future__ import annotations

import array
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.store.base import StoredEvent
from sluice.warehouse.base import ColumnType
from sluice.warehouse.planner import wants_warehouse
from sluice.warehouse.readers import (
    BOOLEAN,
    FLOAT,
    INTEGER,
    MOMENT_TEXT,
    NONE,
    PRESENT_ANY,
    PRESENT_VALUE,
    STRING,
    TEXT_ALL,
    TEXT_VALUE,
    TIMESTAMP,
    Output,
    Reader,
    pointer,
)
from sluice.warehouse.shape import (
    CONST,
    MOMENT,
    PICK,
    TEXT,
    VALUE,
    ExactPlanNeeded,
    Layout,
    Path,
    Source,
)
from sluice.warehouse.sqlfit import flattened, literal, present_sql, python_value, typed_sql
from sluice.warehouse.types import Unfit, fit

C = ColumnType
_decode = msgspec.json.Decoder().decode
GroupKey = tuple[str, str, str | None]  # source id, call type, a track's event name
TableKey = tuple[str, str]  # schema, table
Types = dict[TableKey, dict[str, ColumnType | None]]
SQL_TYPES: Final[dict[ColumnType, str]] = {
    ColumnType.TIMESTAMP: "TIMESTAMPTZ",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.VARCHAR: "VARCHAR",
}
ARROW_TYPES: Final[dict[ColumnType, pa.DataType]] = {
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.VARCHAR: pa.string(),
}


@dataclass(slots=True)
class Column:
    """A column of a group's stage table.

    The stage holds either the typed value (`raw` false: the column's type was known when the
    events were read) or the JSON text (a new column, typed by its first value afterwards).
    `value` is what a query over the stage reads; `flag` (None when SQL always types a present
    value) tells, over the stage `s` joined with the events `e`, that this value was present
    but came out NULL.
    """

    name: str
    source: Source
    column_type: ColumnType
    value: str
    flag: str | None = None


@dataclass(slots=True)
class Group:
    """Events of one source and one call type (and one event name for tracks)."""

    index: int
    key: GroupKey
    schema: str = ""
    layouts: list[Layout] = field(default_factory=list)
    stage: str = ""
    rows: int = 0
    profiles: int = 0
    columns: dict[TableKey, Column] = field(default_factory=dict)  # (table, column) -> stage
    # Events decoded in Python, in log order: the group's first ones (up to `prefix_end`; all of
    # them when `complete`), then any whose keys the tree lacked.
    sample: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    prefix_end: int = 0
    complete: bool = False
    fresh: set[Path] = field(default_factory=set)  # paths learnt after the group was read
    capped: bool = False  # tracks whose name gets no table: the source has all it may have


def stage_columns(group: Group, types: Types) -> dict[tuple[Source, ColumnType], Column]:
    """The group's stage columns: one per (source, type), shared by its tables."""
    group.columns = {}
    made: dict[tuple[Source, ColumnType], Column] = {}
    for layout in group.layouts:
        table_types = types[(group.schema, layout.table)]
        for column, source in layout.columns.items():
            column_type = table_types[column]
            if column_type is None:
                continue  # no row of the chunk has a value: no column
            col = made.get((source, column_type))
            if col is None:
                name = f"c{len(made)}"
                col = made[(source, column_type)] = new_column(name, source, column_type)
            group.columns[(layout.table, column)] = col
    return made


def select_sql(
    group: Group, made: dict[tuple[Source, ColumnType], Column], reader: Reader, table: str
) -> str:
    """The stage's rows, read from the group's events `table`.

    One flag per row, `sluice_flag`: some column's value was there but came out NULL (which
    columns, only flagged rows are asked: see `Column.flag`). Values and presences come first,
    then the flag from both, so that no value is computed twice.
    """
    inner = ["seq", "message_id", f"{reader.text(('messageId',))} AS sluice_id"]
    outer = ["seq", "message_id", "sluice_id"]
    flags = []
    for layout in group.layouts:
        if layout.profile is not None:
            inner.append(f"{reader.text(layout.profile)} AS sluice_pid")
            outer.append("sluice_pid")
    for (source, column_type), col in made.items():
        inner.append(f"{read_sql(source, column_type, reader.json)} AS {col.name}")
        outer.append(col.name)
        if col.flag is not None:
            inner.append(
                f"{present_sql(source.role, json_sql(source, reader.json))} AS p{col.name}"
            )
            flags.append(f"(p{col.name} AND {col.name} IS NULL)")
    outer.append(f"({' OR '.join(flags) or 'false'}) AS sluice_flag")
    if group.key[1] == "track":
        inner.append(f"{reader.text(('event',))} AS sluice_event")
        outer.append("sluice_event")
    inner.append(f"{reader.ok()} AS sluice_ok")
    outer.append("sluice_ok")
    return f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} FROM {reader.source(table)})"


def compiled_select(
    group: Group, made: dict[tuple[Source, ColumnType], Column], read: str
) -> tuple[list[Output], str]:
    """What the compiled reader must make, and the stage's rows for the events it read, from
    the table `read` it makes (`CompiledReader.tables`; the irregular ones are `select_sql`'s).

    Its values are those of `select_sql`'s SQL, or NULL and flagged (types Python then makes).
    """
    outputs = [Output("sluice_id", STRING, ("messageId",))]
    outer = ["seq", "message_id", "sluice_id"]
    for layout in group.layouts:
        if layout.profile is not None:
            outputs.append(Output("sluice_pid", STRING, layout.profile))
            outer.append("sluice_pid")
    for (source, column_type), col in made.items():
        if source.role == CONST:
            outer.append(f"{read_sql(source, column_type, None)} AS {col.name}")
            continue
        outer.append(col.name)
        op = compiled_op(source.role, column_type)
        alt = source.alt if source.role == PICK and source.alt else None
        presence = PRESENT_VALUE if source.role == VALUE else PRESENT_ANY
        arrow_type = ARROW_TYPES[column_type]
        flagged = col.flag is not None
        outputs.append(Output(col.name, op, source.path, arrow_type, alt, presence, flagged))
    outer.append("sluice_flag")
    if group.key[1] == "track":
        outputs.append(Output("sluice_event", STRING, ("event",)))
        outer.append("sluice_event")
    outer.append("sluice_read_ok AS sluice_ok")
    return outputs, f"SELECT {', '.join(outer)} FROM {read} WHERE NOT sluice_odd"


def compiled_op(role: str, column_type: ColumnType) -> int:
    """The compiled reader's op for what `typed_sql` does with this role and type."""
    if role in (TEXT, PICK):
        return {C.VARCHAR: TEXT_ALL, C.TIMESTAMP: TIMESTAMP}.get(column_type, NONE)
    if column_type is C.VARCHAR:
        return MOMENT_TEXT if role == MOMENT else TEXT_VALUE
    return {C.INTEGER: INTEGER, C.FLOAT: FLOAT, C.BOOLEAN: BOOLEAN}.get(column_type, TIMESTAMP)


def new_column(name: str, source: Source, column_type: ColumnType) -> Column:
    """A stage column; its flag (when SQL can leave a present value NULL) reads the value's
    JSON text `e.payload` again, for the few flagged rows only."""
    if source.role == CONST:
        return Column(name, source, column_type, name)
    _, prone = typed_sql(source.role, column_type, name)
    if not prone:
        return Column(name, source, column_type, name)

    def from_payload(path: Path) -> str:
        return f"json_extract(e.payload, '{pointer(path)}')::VARCHAR"

    flag = f"({present_sql(source.role, json_sql(source, from_payload))} AND s.{name} IS NULL)"
    return Column(name, source, column_type, name, flag)


def read_sql(source: Source, column_type: ColumnType, j: Any) -> str:
    """What the stage stores for a column: its typed value."""
    if source.role == CONST:
        try:
            return literal(fit(source.const, column_type))
        except Unfit as exc:
            raise ExactPlanNeeded(f"a constant column does not fit: {exc}") from exc
    sql = typed_sql(source.role, column_type, json_sql(source, j))[0]
    return f"CAST({sql} AS {SQL_TYPES[column_type]})"  # a stage column of the right type


def json_sql(source: Source, j: Any) -> str:
    """The JSON text a column's value comes from (a page name: top level, else property)."""
    w: str = j(source.path)
    if source.role == PICK and source.alt:  # the property only as a value (objects flatten)
        alt = j(source.alt)
        w = (
            f"CASE WHEN {present_sql(PICK, w)} THEN {w}"
            f" WHEN {present_sql(VALUE, alt)} THEN {alt} END"
        )
    return w


def share_tracks_types(
    groups: list[Group],
    types: Types,
    only: TableKey | None = None,
) -> None:
    """Event tables type their standard columns as `tracks` does (the exact planner's
    `_sync`), unless they already have the column."""
    for group in groups:
        for layout in group.layouts:
            key = (group.schema, layout.table)
            if not layout.shared or (only is not None and key != only):
                continue
            base = types.get((group.schema, "tracks"), {})
            table_types = types[key]
            for column, column_type in base.items():
                if column_type is not None and table_types.get(column, 0) is None:
                    table_types[column] = column_type


def profile_filter(group: Group, table: str) -> str:
    """users/accounts rows exist only for events with a profile id."""
    layout = next(lay for lay in group.layouts if lay.table == table)
    if layout.profile is None:
        return ""
    return " AND sluice_pid IS NOT NULL AND sluice_pid <> ''"


def _get(msg: dict[str, Any], path: Path) -> Any:
    value: Any = msg
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def _sample_value(msg: dict[str, Any], source: Source, profile: Path | None) -> tuple[bool, Any]:
    """(present, value) of a column in a decoded event, as the flattener makes it."""
    if profile is not None:
        profile_id = _get(msg, profile)
        if profile_id is None or profile_id == "":
            return False, None
    role, value = source.role, _get(msg, source.path)
    if role == PICK:
        if value is None:
            if not source.alt:
                return False, None
            role, value = VALUE, _get(msg, source.alt)
        else:
            role = TEXT
    if value is None or (role == VALUE and type(value) is dict):
        return False, None
    return True, flattened(value, role)


def first_in_sample(group: Group, source: Source, profile: Path | None) -> tuple[int, Any] | None:
    """The column's first value among the decoded events, when it surely is the first."""
    for seq, msg in group.sample:
        present, value = _sample_value(msg, source, profile)
        if present:
            if group.complete or seq <= group.prefix_end or _fresh(group, source):
                return seq, value
            return None
    return None


def sample_has_all(group: Group, source: Source) -> bool:
    """The decoded events are all the events that can hold a value for this column."""
    return group.complete or _fresh(group, source)


def _fresh(group: Group, source: Source) -> bool:
    return source.path in group.fresh and (not source.alt or source.alt in group.fresh)


def events_arrow(events: list[StoredEvent]) -> pa.Table:
    """A group's events as Arrow columns (the group says their source, type and event)."""
    payloads = [e.payload for e in events]
    # One join and the offsets: several times faster than pyarrow converting each bytes object.
    offsets = array.array("i", itertools.accumulate(map(len, payloads), initial=0))
    joined = pa.StringArray.from_buffers(
        len(payloads), pa.py_buffer(offsets), pa.py_buffer(b"".join(payloads))
    )
    joined.validate(full=True)  # UTF-8, or ArrowInvalid
    return pa.table(
        {
            "seq": pa.array([e.seq for e in events], pa.int64()),
            "message_id": pa.array([e.message_id for e in events], pa.string()),
            "payload": joined,
        }
    )


def wanted(msg: Any, warehouse_id: str) -> bool:
    """`integrations.Warehouses` lets a decoded event into this warehouse (planner.py)."""
    return type(msg) is not dict or "integrations" not in msg or wants_warehouse(msg, warehouse_id)


def event_name(payload: bytes) -> str:
    """A track's event name from its payload (the store keeps string names only)."""
    msg = _decode(payload)
    event = msg.get("event") if type(msg) is dict else None
    if type(event) is not str or not event:
        raise ExactPlanNeeded("a track without an event name")
    return event


def first_values_query(
    asks: list[tuple[tuple[TableKey, str], Source, Path | None]], events: str
) -> tuple[str, Callable[[tuple[Any, ...]], Iterator[tuple[tuple[TableKey, str], int, Any]]]]:
    """One query for the first present value (log order) of the asked columns, and how to
    read its row: (column, seq, value as the flattener has it) for those that have one."""
    paths: dict[Path, int] = {}

    def j(path: Path) -> str:
        return f"j[{paths.setdefault(path, len(paths) + 1)}]"

    selects: list[str] = []
    roles: list[str] = []
    for _, source, profile in asks:
        options = [(source.path, source.role, "")]
        if source.role == PICK and source.alt:  # the top-level value, else the property's
            options = [
                (source.path, TEXT, ""),
                (source.alt, VALUE, f" AND NOT {present_sql(TEXT, j(source.path))}"),
            ]
        for path, role, extra in options:
            cond = present_sql(role, j(path)) + extra
            if profile is not None:
                pid = f"json_extract_string({j(profile)}, '$')"
                cond += f" AND {pid} IS NOT NULL AND {pid} <> ''"
            selects.append(f"min(seq) FILTER (WHERE {cond})")
            selects.append(f"arg_min({j(path)}, seq) FILTER (WHERE {cond})")
            roles.append(role)
    ptrs = ", ".join(f"'{pointer(p)}'" for p in paths)
    query = (
        f"SELECT {', '.join(selects)} FROM (SELECT seq, json_extract(payload, [{ptrs}])"
        f"::VARCHAR[] AS j FROM {events})"
    )

    def read(row: tuple[Any, ...]) -> Iterator[tuple[tuple[TableKey, str], int, Any]]:
        position = 0
        for key, source, _ in asks:
            for _ in range(2 if source.role == PICK and source.alt else 1):
                seq, raw = row[2 * position], row[2 * position + 1]
                if seq is not None:
                    yield key, seq, python_value(raw, roles[position])
                position += 1

    return query, read
