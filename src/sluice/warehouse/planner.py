"""From a chunk of the event log to the `TableBatch`es and `Discard`s of one warehouse load.

The planner owns the schema work: it knows the columns each table has (read once from the
backend, then kept up to date with the columns its own plans add), gives a new column the type of
its first value, makes later values fit their column or discards them, honours
`integrations.Warehouses` and a warehouse's `sources`, and deduplicates on `id` within the load
(the backend deduplicates across loads). It also caps the event tables of each source's schema
(`max_event_tables`): once a schema has that many, a new event name's tracks go to `tracks`
only, and the plan counts them (`CappedEvents`), with one discard the first time a name is
capped. Both planners ask it (`allows_event_table`), in log order, so they cap the same names.

Speed matters (a backfill replays the whole log): a value whose Python type already is its
column's native type, which is nearly every value, costs one dict lookup and one identity test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from sluice.config import DEFAULT_WAREHOUSE_MAX_EVENT_TABLES
from sluice.gcpause import gc_paused
from sluice.spec.jsontext import clean_body, lenient_decode
from sluice.store.base import StoredEvent
from sluice.warehouse.base import CappedEvents, ColumnType, Discard, TableBatch
from sluice.warehouse.flatten import Flattener, Row
from sluice.warehouse.naming import STANDARD_TABLES, Namer
from sluice.warehouse.types import NATIVE, Unfit, as_text, fit, infer

ColumnsOf = Callable[[str], dict[str, dict[str, ColumnType]]]
CappedOf = Callable[[str], Collection[str]]  # a schema's event tables capped by earlier loads
CappedCounts = dict[tuple[str, str], list[Any]]  # (schema, table) -> [event_text, events, first]
_decode = msgspec.json.Decoder().decode
_MAX_DISCARDED_VALUE = 1024
_MAX_SHAPES = 256


def wants_warehouse(msg: dict[str, Any], warehouse_id: str) -> bool:
    """`integrations.Warehouses` (spec 1.13): `{"all": false}` skips every warehouse,
    `{"warehouseIds": [...]}` only loads into those; `"All": false` alone does not block."""
    integrations = msg.get("integrations")
    if type(integrations) is not dict:
        return True
    option = integrations.get("Warehouses")
    if option is None or option is True:
        return True
    if option is False:
        return False
    if type(option) is not dict:
        return True
    ids = option.get("warehouseIds")
    if type(ids) is list:
        return warehouse_id in ids
    return option.get("all") is not False


@dataclass(slots=True)
class _Table:
    """One table while a plan is built: its columns (existing and new) and its rows."""

    schema: str
    name: str
    types: dict[str, ColumnType]  # shared with the planner's knowledge of the warehouse
    native: dict[str, type]
    initial: frozenset[str]  # the columns the table had when this plan started
    upsert: bool = False
    rows: list[Row] = field(default_factory=list)
    by_id: dict[str, Row] = field(default_factory=dict)
    # Tables whose rows repeat another table's standard columns (an event table those of
    # `tracks`): they take the values typed for that table while their types agree.
    shapes: dict[tuple[str, ...], tuple[type, ...]] = field(default_factory=dict)
    base: _Table | None = None
    synced: int = -1
    mismatch: bool = False


@dataclass(slots=True)
class Plan:
    """Everything one load writes, and what the report says about it."""

    batches: list[TableBatch]
    discards: list[Discard]
    new_columns: list[tuple[str, str, str, ColumnType]]  # schema, table, column, type
    events: int  # events read
    loaded: int  # events that produced rows
    skipped: int  # other sources, integrations.Warehouses, types without a table
    duplicates: int  # events whose messageId came earlier in the same load
    capped: list[CappedEvents] = field(default_factory=list)  # tracks with no table of their own


def capped_events(counts: CappedCounts) -> list[CappedEvents]:
    return [CappedEvents(sc, t, text, n, first) for (sc, t), (text, n, first) in counts.items()]


def capped_discard(schema: str, event_text: str, row_id: str, max_event_tables: int) -> Discard:
    """What `_sluice.discards` keeps of a name capped for the first time (its first event)."""
    reason = (
        f"the source has {max_event_tables} event tables (max_event_tables):"
        " this event name's events load into tracks only"
    )
    return make_discard(schema, "tracks", "event", row_id, event_text, reason)


class Planner:
    """Plans the loads of one warehouse; keep one per backend connection and reuse it."""

    def __init__(
        self,
        warehouse_id: str,
        namer: Namer,
        columns_of: ColumnsOf,
        sources: Collection[str] = (),
        *,
        max_event_tables: int = DEFAULT_WAREHOUSE_MAX_EVENT_TABLES,
        capped_of: CappedOf | None = None,
    ) -> None:
        self.warehouse_id = warehouse_id
        self.namer = namer
        self.flattener = Flattener(namer)
        self._columns_of = columns_of
        self.sources = frozenset(sources)
        self.max_event_tables = max_event_tables
        self._capped_of = capped_of
        self._known: dict[str, dict[str, dict[str, ColumnType]]] = {}
        self._event_tables: dict[str, int] = {}  # per schema: its event tables, planned ones too
        self._refused: dict[str, set[str]] = {}  # per schema: event tables refused so far
        self._capped: dict[str, set[str]] = {}  # per schema: names capped by earlier plans

    def plan(self, events: Sequence[StoredEvent], uuid_ts: datetime) -> Plan:
        with gc_paused():  # every row stays alive until the load
            return self._plan(events, uuid_ts)

    def _plan(self, events: Sequence[StoredEvent], uuid_ts: datetime) -> Plan:
        tables: dict[tuple[str, str], _Table] = {}
        discards: list[Discard] = []
        capped: CappedCounts = {}
        seen: set[tuple[str, str]] = set()
        notes: list[tuple[str, str]] = []
        loaded = skipped = duplicates = 0
        sources, warehouse_id = self.sources, self.warehouse_id
        rows_of, fit_row = self.flattener.rows, self._fit_row
        for stored in events:
            if sources and stored.source_id not in sources:
                skipped += 1
                continue
            schema = self.namer.schema(stored.source_id)
            try:
                msg = _decode(stored.payload)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                msg = _decode_lenient(stored.payload)
            if type(msg) is not dict or "_unreadable" in msg:
                reason = "the stored event is not a JSON object"
                discards.append(
                    make_discard(schema, "", "", stored.message_id, stored.payload, reason)
                )
                continue
            if "integrations" in msg and not wants_warehouse(msg, warehouse_id):
                skipped += 1
                continue
            key = (schema, stored.message_id)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            standard, parts = rows_of(stored.type, msg, uuid_ts, notes)
            if notes:
                for value, reason in notes:
                    discards.append(
                        Discard(schema, "tracks", "event", standard["id"], value, reason)
                    )
                notes.clear()
            if not parts:
                skipped += 1
                continue
            if len(parts) > 1 and stored.type == "track":
                table_name = parts[1][0]
                if not self.allows_event_table(schema, table_name):
                    parts = parts[:1]
                    text = standard["event_text"]
                    discard = self.count_capped(capped, schema, table_name, text, standard["id"])
                    if discard is not None:
                        discards.append(discard)
                        self.note_capped(schema, table_name)
            loaded += 1
            row_id = standard["id"]
            base: _Table | None = None
            shared: list[Discard] = []  # discards of the standard values
            for name, extra, upsert, with_standard in parts:
                table = tables.get((schema, name))
                if table is None:
                    table = tables[(schema, name)] = self._table(schema, name, upsert)
                if not with_standard:
                    fit_row(table, extra, extra["id"], discards)
                    row = extra
                elif base is None:
                    base = table
                    before = len(discards)
                    fit_row(table, standard, row_id, discards)
                    if len(discards) > before:
                        shared = discards[before:]
                    if extra:
                        fit_row(table, extra, row_id, discards)
                        row = standard.copy()
                        row.update(extra)
                    else:
                        row = standard
                else:
                    if table.base is not base or table.synced != len(base.types):
                        _sync(table, base)
                    if table.mismatch:
                        row = standard.copy()
                        row.update(extra)
                        fit_row(table, row, row_id, discards)
                    else:
                        # The standard values were typed for `base`; so are their discards.
                        for d in shared:
                            discards.append(
                                Discard(d.schema, name, d.column, d.row_id, d.value, d.reason)
                            )
                        fit_row(table, extra, row_id, discards)
                        row = standard.copy()
                        row.update(extra)
                if upsert:
                    table.by_id[row["id"]] = row  # the latest call wins
                else:
                    table.rows.append(row)
        batches: list[TableBatch] = []
        new_columns: list[tuple[str, str, str, ColumnType]] = []
        for table in tables.values():
            rows = list(table.by_id.values()) if table.upsert else table.rows
            columns = {c: t for c, t in table.types.items() if any(c in r for r in rows)}
            batches.append(TableBatch(table.schema, table.name, columns, rows, table.upsert))
            new_columns.extend(
                (table.schema, table.name, c, t)
                for c, t in columns.items()
                if c not in table.initial
            )
        return Plan(
            batches,
            discards,
            new_columns,
            len(events),
            loaded,
            skipped,
            duplicates,
            capped_events(capped),
        )

    def count_capped(
        self,
        counts: CappedCounts,
        schema: str,
        table: str,
        event_text: str,
        row_id: str,
        events: int = 1,
    ) -> Discard | None:
        """Count tracks that go to `tracks` only; the discard to keep when this plan is the
        first to cap their name (`row_id`: the name's first event in the plan)."""
        entry = counts.get((schema, table))
        if entry is not None:
            entry[1] += events
            return None
        first = self.first_capped(schema, table)
        counts[(schema, table)] = [event_text, events, first]
        return capped_discard(schema, event_text, row_id, self.max_event_tables) if first else None

    def allows_event_table(self, schema: str, table: str) -> bool:
        """Whether the event table `table` may have rows: it exists (or an earlier plan makes
        it), or the schema has fewer than `max_event_tables` event tables (then it is counted
        in from now on). Asked in log order, so that the first names get the tables."""
        known = self.known(schema)
        if table in known:
            return True
        refused = self._refused.setdefault(schema, set())
        if table in refused:
            return False
        count = self._event_tables.get(schema)
        if count is None:
            count = sum(1 for name in known if name not in STANDARD_TABLES)
        if count < self.max_event_tables:
            known[table] = {}
            self._event_tables[schema] = count + 1
            return True
        self._event_tables[schema] = count
        refused.add(table)
        return False

    def first_capped(self, schema: str, table: str) -> bool:
        """Whether no earlier load or plan capped the name of this event table."""
        capped = self._capped.get(schema)
        if capped is None:
            of = self._capped_of
            capped = self._capped[schema] = set(of(schema) if of is not None else ())
        return table not in capped

    def note_capped(self, schema: str, table: str) -> None:
        """The plan that capped it first stands (`first_capped` asked before)."""
        self._capped[schema].add(table)

    def forget(self) -> None:
        """Drop what the planner believes the warehouse holds (after a failed load)."""
        self._known.clear()
        self._event_tables.clear()
        self._refused.clear()
        self._capped.clear()

    def known(self, schema: str) -> dict[str, dict[str, ColumnType]]:
        """`{table: {column: type}}` as the warehouse will be once the plans made so far load.

        The columnar planner reads and extends the same dicts, so that both planners agree.
        """
        known = self._known.get(schema)
        if known is None:
            known = self._known[schema] = self._columns_of(schema)
        return known

    def _table(self, schema: str, name: str, upsert: bool) -> _Table:
        known = self.known(schema)
        types = known.get(name)
        if types is None:
            types = known[name] = {}
        native = {c: NATIVE[t] for c, t in types.items()}
        return _Table(schema, name, types, native, frozenset(types), upsert)

    def _fit_row(self, table: _Table, row: Row, row_id: str, discards: list[Discard]) -> None:
        """Type the row's values for the table, in place: new columns take the type of their
        first value, values that do not fit leave the row for `discards`."""
        # Rows of a table mostly repeat one key order: compare all the value types at once.
        expected = table.shapes.get(keys := tuple(row))
        if expected is not None and tuple(map(type, row.values())) == expected:
            return
        native = table.native
        slow = [c for c, v in row.items() if type(v) is not native.get(c)]
        if not slow:
            if len(table.shapes) < _MAX_SHAPES:
                table.shapes[keys] = tuple(native[c] for c in keys)
            return
        for column in slow:
            value = row[column]
            column_type = table.types.get(column)
            if column_type is None:
                if not column:
                    del row[column]
                    reason = "property name has no ASCII letter or digit"
                    discards.append(
                        make_discard(table.schema, table.name, "", row_id, value, reason)
                    )
                    continue
                column_type = infer(value)
                table.types[column] = column_type
                native[column] = NATIVE[column_type]
            try:
                row[column] = fit(value, column_type)
            except Unfit as exc:
                del row[column]
                discards.append(
                    make_discard(table.schema, table.name, column, row_id, value, exc.reason)
                )


def _sync(table: _Table, base: _Table) -> None:
    """Give `table` the columns of `base` it lacks; note whether a shared column's type differs."""
    table.base = base
    for column, column_type in base.types.items():
        mine = table.types.get(column)
        if mine is None:
            table.types[column] = column_type
            table.native[column] = NATIVE[column_type]
        elif mine is not column_type:
            table.mismatch = True
    table.synced = len(base.types)


def _decode_lenient(payload: bytes) -> dict[str, Any] | None:
    """What msgspec refuses: the standard library's decoder (`1e400` becomes infinity, which
    loads as a discard), else as Segment's API would have stored it (broken strings as U+FFFD);
    None when it is no JSON object at all."""
    try:
        msg = json.loads(clean_body(payload))
    except (ValueError, RecursionError):
        msg = lenient_decode(payload)
    return msg if isinstance(msg, dict) else None


def make_discard(
    schema: str, table: str, column: str, row_id: str, value: Any, reason: Any
) -> Discard:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else as_text(value)
    return Discard(schema, table, column, row_id, text[:_MAX_DISCARDED_VALUE], str(reason))
