"""From a chunk of the event log to the `TableBatch`es and `Discard`s of one warehouse load.

The planner owns the schema work: it knows the columns each table has (read once from the
backend, then kept up to date with the columns its own plans add), gives a new column the type of
its first value, makes later values fit their column or discards them, honours
`integrations.Warehouses` and a warehouse's `sources`, and deduplicates on `id` within the load
(the backend deduplicates across loads).

Speed matters (a backfill replays the whole log): a value whose Python type already is its
column's native type, which is nearly every value, costs one dict lookup and one identity test.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from sluice.spec.jsontext import clean_body, lenient_decode
from sluice.store.base import StoredEvent
from sluice.warehouse.base import ColumnType, Discard, TableBatch
from sluice.warehouse.flatten import Flattener, Row
from sluice.warehouse.naming import Namer
from sluice.warehouse.types import NATIVE, Unfit, as_text, fit, infer

ColumnsOf = Callable[[str], dict[str, dict[str, ColumnType]]]
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


class Planner:
    """Plans the loads of one warehouse; keep one per backend connection and reuse it."""

    def __init__(
        self,
        warehouse_id: str,
        namer: Namer,
        columns_of: ColumnsOf,
        sources: Collection[str] = (),
    ) -> None:
        self.warehouse_id = warehouse_id
        self.namer = namer
        self.flattener = Flattener(namer)
        self._columns_of = columns_of
        self.sources = frozenset(sources)
        self._known: dict[str, dict[str, dict[str, ColumnType]]] = {}

    def plan(self, events: Sequence[StoredEvent], uuid_ts: datetime) -> Plan:
        # Every row stays alive until the load: the cyclic collector would rescan them all
        # again and again (it halved throughput) while reference counting frees the rest.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._plan(events, uuid_ts)
        finally:
            if collecting:
                gc.enable()

    def _plan(self, events: Sequence[StoredEvent], uuid_ts: datetime) -> Plan:
        tables: dict[tuple[str, str], _Table] = {}
        discards: list[Discard] = []
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
                discards.append(_discard(schema, "", "", stored.message_id, stored.payload, reason))
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
        return Plan(batches, discards, new_columns, len(events), loaded, skipped, duplicates)

    def forget(self) -> None:
        """Drop what the planner believes the warehouse holds (after a failed load)."""
        self._known.clear()

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
                    discards.append(_discard(table.schema, table.name, "", row_id, value, reason))
                    continue
                column_type = infer(value)
                table.types[column] = column_type
                native[column] = NATIVE[column_type]
            try:
                row[column] = fit(value, column_type)
            except Unfit as exc:
                del row[column]
                discards.append(
                    _discard(table.schema, table.name, column, row_id, value, exc.reason)
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


def _discard(schema: str, table: str, column: str, row_id: str, value: Any, reason: Any) -> Discard:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else as_text(value)
    return Discard(schema, table, column, row_id, text[:_MAX_DISCARDED_VALUE], str(reason))
