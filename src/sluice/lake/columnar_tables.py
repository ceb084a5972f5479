"""The lake's output: one Arrow table per table a chunk's groups fill, cut from their stages.

Where the other warehouses' batches are queries over DuckDB stage tables
(warehouse/columnar_tables.py), the lake's are Arrow tables (`ArrowRows`) the Parquet writer
takes as they are: each group's stage cut to the table's columns and types, the groups
concatenated in group order, users/accounts reduced to each id's latest row. Which tables and
columns is decided as for every warehouse (`TableCuts._batches`); this mixin, ahead of it in
`LakeChunk`'s bases, makes only each table's rows (`_staged`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from sluice.warehouse.base import ColumnType, StagedRows
from sluice.warehouse.shape import Layout
from sluice.warehouse.stage import ARROW_TYPES, Group


@dataclass(frozen=True, slots=True)
class ArrowRows(StagedRows):
    """A batch's rows as an Arrow table of its columns' types (no DuckDB query behind them)."""

    table: Any = None  # pa.Table


class ArrowTables:
    """Mixed into `LakeChunk`: uses its Arrow stages."""

    _stages: dict[str, pa.Table]

    def _staged(
        self,
        table: str,
        pairs: list[tuple[Group, Layout]],
        upsert: bool,
        count: int,
        columns: dict[str, ColumnType],
    ) -> StagedRows:
        """A table's rows as one Arrow table: its groups' stages, in group order."""
        arrow_schema = pa.schema([(c, ARROW_TYPES[t]) for c, t in columns.items()])
        pieces = [self._piece(group, layout, columns, arrow_schema) for group, layout in pairs]
        rows = pa.concat_tables(pieces)
        if upsert:  # the latest row per id (seqs are unique in a chunk)
            latest = rows.group_by("id").aggregate([("sluice_seq", "max")])
            rows = rows.filter(pc.is_in(rows["sluice_seq"], value_set=latest["sluice_seq_max"]))
        rows = rows.drop_columns(["sluice_seq"])
        return ArrowRows(None, "", rows.num_rows, table=rows)

    def _piece(
        self, group: Group, layout: Layout, columns: dict[str, ColumnType], schema: pa.Schema
    ) -> pa.Table:
        """One group's rows of one table (with `sluice_seq`, for upserts)."""
        stage = self._stages[group.stage]
        if layout.profile is not None:  # users/accounts: rows with a profile id only
            pid = stage["sluice_pid"]
            stage = stage.filter(pc.and_kleene(pc.is_valid(pid), pc.not_equal(pid, "")))
        arrays = [stage["seq"]]
        for column, field in zip(columns, schema, strict=True):
            col = group.columns.get((layout.table, column))
            if col is None:
                arrays.append(pa.nulls(stage.num_rows, field.type))
            else:
                arrays.append(stage[col.name].cast(field.type))
        return pa.Table.from_arrays(
            arrays, schema=schema.insert(0, pa.field("sluice_seq", pa.int64()))
        )
