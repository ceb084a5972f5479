"""The columnar planner's column types: what a chunk's new columns become.

A column the warehouse has keeps its type; `tracks`' standard columns give an event table's
theirs; any other new column takes the type of its first value in log order (`types.infer`), as
the exact planner decides it event by event. That first value is found among the events the
chunk decoded when they cover it, or read by one query per group (stage.py's
`first_values_query`). Mixed into `Chunk` (columnar.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluice.warehouse.shape import CONST, Path, Source
from sluice.warehouse.stage import (
    Group,
    TableKey,
    Types,
    first_in_sample,
    first_values_query,
    sample_has_all,
    share_tracks_types,
)
from sluice.warehouse.types import infer

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner


class ColumnTyping:
    """Mixed into `Chunk`: uses its planner, its groups' first events and its DuckDB rows."""

    owner: ColumnarPlanner
    _first: Callable[[Group], tuple[int, str]]
    _row: Callable[[str], tuple[Any, ...]]

    def _types(self, groups: list[Group], uuid_ts: datetime) -> Types:
        """Each table's columns: the warehouse's type; `tracks`' for an event table's standard
        columns; else the type of the column's first value in log order (None: no value)."""
        planner, shaper = self.owner.planner, self.owner.shaper
        types: Types = {}
        for group in sorted(groups, key=self._first):  # new event tables: first come, first in
            if group.key[1] == "track" and (table := planner.namer.event_table(group.key[2] or "")):
                group.capped = not planner.allows_event_table(group.schema, table)
        for group in groups:
            group.layouts = shaper.layouts(
                group.key[1],
                group.key[2],
                self.owner.trees[group.key],
                uuid_ts,
                own_table=not group.capped,
            )
            for layout in group.layouts:
                known = planner.known(group.schema).get(layout.table, {})
                table_types = types.setdefault((group.schema, layout.table), dict(known))
                for column, source in layout.columns.items():
                    if column not in table_types:
                        table_types[column] = infer(source.const) if source.role == CONST else None
        share_tracks_types(groups, types)
        firsts = self._first_values(groups, types)
        for table_key in sorted(types, key=lambda k: k[1] != "tracks"):
            share_tracks_types(groups, types, only=table_key)
            table_types = types[table_key]
            for column, column_type in table_types.items():
                first = firsts.get((table_key, column))
                if column_type is None and first is not None:
                    table_types[column] = infer(first[1])
        return types

    def _first_values(
        self, groups: list[Group], types: Types
    ) -> dict[tuple[TableKey, str], tuple[int, Any]]:
        """The first value (log order) of each column without a type, as the flattener has it.

        The decoded events hold it when they include the group's first events up to it, or
        every event with its key; otherwise one query reads it.
        """
        firsts: dict[tuple[TableKey, str], tuple[int, Any]] = {}

        def keep(key: tuple[TableKey, str], seq: int, value: Any) -> None:
            if key not in firsts or seq < firsts[key][0]:
                firsts[key] = (seq, value)

        for group in groups:
            asks: list[tuple[tuple[TableKey, str], Source, Path | None]] = []
            for layout in group.layouts:
                table_types = types[(group.schema, layout.table)]
                for column, source in layout.columns.items():
                    if table_types.get(column, 0) is not None or source.role == CONST:
                        continue
                    key = ((group.schema, layout.table), column)
                    found = first_in_sample(group, source, layout.profile)
                    if found is not None:
                        keep(key, *found)
                    elif not sample_has_all(group, source):
                        asks.append((key, source, layout.profile))
            if asks:
                for key, seq, value in self._first_values_sql(group, asks):
                    keep(key, seq, value)
        return firsts

    def _first_values_sql(
        self, group: Group, asks: list[tuple[tuple[TableKey, str], Source, Path | None]]
    ) -> Iterator[tuple[tuple[TableKey, str], int, Any]]:
        query, read = first_values_query(asks, f"sluice_e{group.index}")
        yield from read(self._row(query))
