"""The columnar planner's output: one `TableBatch` per table a chunk's groups fill.

Each batch is a query over the groups' stage tables (`StagedRows`): a DuckDB warehouse inserts
from it, PostgreSQL reads it as Arrow, without Python touching a value. Only the columns some
row fills are written (a new column no row uses is not added). `tables_to_load` is shared with
the lake, which cuts Arrow tables instead (lake/columnar.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

import duckdb

from sluice.warehouse.base import ColumnType, StagedRows, TableBatch
from sluice.warehouse.planner import Planner
from sluice.warehouse.shape import Layout
from sluice.warehouse.sqlfit import ident
from sluice.warehouse.stage import Group, TableKey, Types, profile_filter

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner


class TableCuts:
    """Mixed into `Chunk`: uses its planner and its DuckDB cursor."""

    owner: ColumnarPlanner

    if TYPE_CHECKING:

        @property
        def db(self) -> duckdb.DuckDBPyConnection: ...  # the chunk's cursor for this thread

    def _batches(
        self,
        groups: list[Group],
        types: Types,
        used: set[tuple[str, str, str]],
    ) -> tuple[list[TableBatch], list[tuple[str, str, str, ColumnType]]]:
        """A batch per table the groups fill (`_staged` its rows), and the columns it adds."""
        batches: list[TableBatch] = []
        new_columns: list[tuple[str, str, str, ColumnType]] = []
        for (schema, table), pairs, upsert, count, initial, columns in tables_to_load(
            self.owner.planner, groups, types, used
        ):
            staged = self._staged(table, pairs, upsert, count, columns)
            batches.append(TableBatch(schema, table, columns, [], upsert, staged))
            new_columns.extend(
                (schema, table, c, t) for c, t in columns.items() if c not in initial
            )
        return batches, new_columns

    def _staged(
        self,
        table: str,
        pairs: list[tuple[Group, Layout]],
        upsert: bool,
        count: int,
        columns: dict[str, ColumnType],
    ) -> StagedRows:
        """A table's rows: a query over its groups' stage tables, in group order (upserts: the
        latest row per id)."""
        selects = []
        for group, _ in pairs:
            values = [
                f"{group.columns[(table, c)].value} AS {ident(c)}"
                if (table, c) in group.columns
                else f"NULL AS {ident(c)}"
                for c in columns
            ]
            where = profile_filter(group, table).replace(" AND ", " WHERE ", 1)
            selects.append(
                f"SELECT seq AS sluice_seq, {', '.join(values)} FROM {group.stage}{where}"
            )
        names = ", ".join(ident(c) for c in columns)
        query = f"SELECT {names} FROM ({' UNION ALL '.join(selects)})"
        if upsert:
            query += " QUALIFY row_number() OVER (PARTITION BY id ORDER BY sluice_seq DESC) = 1"
        return StagedRows(self.db, query, count, self.owner.instance)


TableToLoad = tuple[
    TableKey, list[tuple[Group, Layout]], bool, int, dict[str, ColumnType], dict[str, ColumnType]
]


def tables_to_load(
    planner: Planner, groups: list[Group], types: Types, used: set[tuple[str, str, str]]
) -> Iterator[TableToLoad]:
    """Each table a chunk's groups fill, with the groups' layouts for it, whether it is an
    upsert table, its row count, the columns it had and the columns this load writes (those a
    layout fills, already there or in `used`). Shared by the DuckDB-staged planner and the
    lake's Arrow one (lake/columnar.py)."""
    parts: dict[TableKey, list[tuple[Group, Layout]]] = defaultdict(list)
    for group in groups:
        for layout in group.layouts:
            parts[(group.schema, layout.table)].append((group, layout))
    for (schema, table), pairs in parts.items():
        upsert = pairs[0][1].upsert
        count = sum(g.profiles if upsert else g.rows for g, _ in pairs)
        if not count:
            continue
        initial = planner.known(schema).get(table, {})
        columns: dict[str, ColumnType] = {}
        for column, column_type in types[(schema, table)].items():
            if column_type is None or not any(column in lay.columns for _, lay in pairs):
                continue
            if column in initial or (schema, table, column) in used:
                columns[column] = column_type
        yield (schema, table), pairs, upsert, count, initial, columns
