"""The lake's checks of a staged group, in Arrow: `Chunk._check`'s counts and proofs, and
Python's values patched into the stage.

The other warehouses count a group's rows, prove its payloads' messageIds and event names are
the log's, and find which new columns some row fills with aggregate queries over a DuckDB stage
table (warehouse/columnar_checks.py). The lake's stage is an Arrow table; registering it in
DuckDB for those few aggregates cost more than counting in Arrow. Flagged values still go
through DuckDB's JSON reading and `types.fit` (`_discards`), and the values Python makes are
patched into the Arrow stage. Mixed into `LakeChunk` (columnar.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from sluice.warehouse.base import Discard
from sluice.warehouse.shape import CONST, ExactPlanNeeded
from sluice.warehouse.stage import ARROW_TYPES, Column, Group

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner


class ArrowStageChecks:
    """Mixed into `LakeChunk`: uses its planner, its Arrow stages and its flagged values'
    reading (`_discards`)."""

    owner: ColumnarPlanner
    _stages: dict[str, pa.Table]
    _set: Callable[..., None]
    _discards: Callable[[Group, Column, list[tuple[tuple[int, int, int], Discard]]], None]

    if TYPE_CHECKING:

        @property
        def db(self) -> duckdb.DuckDBPyConnection: ...  # the chunk's cursor for this thread

    def _check(
        self, group: Group
    ) -> tuple[set[tuple[str, str, str]], list[tuple[tuple[int, int, int], Discard]]]:
        """`Chunk._check`'s counts and checks, counted in Arrow over the stage (registering it
        in DuckDB for those few aggregates cost more than they do)."""
        discards: list[tuple[tuple[int, int, int], Discard]] = []
        if pc.any(self._stages[group.stage]["sluice_flag"]).as_py():
            for col in {id(c): c for c in group.columns.values() if c.flag}.values():
                self._discards(group, col, discards)
        stage = self._stages[group.stage]  # as patched
        known = self.owner.planner.known(group.schema)
        profiled = {layout.table for layout in group.layouts if layout.profile is not None}
        new = [
            (key, c)
            for key, c in group.columns.items()
            if c.source.role != CONST and key[1] not in known.get(key[0], {})
        ]
        group.rows = rows = stage.num_rows
        bad_ids = rows - _trues(pc.equal(stage["sluice_id"], stage["message_id"]))
        bad_events = 0
        if group.key[1] == "track":
            event, name = stage["sluice_event"], group.key[2]
            bad_events = rows - (
                event.null_count if name is None else _trues(pc.equal(event, name))
            )
        if bad_ids or bad_events:
            raise ExactPlanNeeded("a payload's messageId or event differs from the log's")
        group.profiles = 0
        latest: pa.ChunkedArray | None = None
        if profiled:  # users/accounts: the latest row of each profile id, as a mask
            latest = _latest_rows(stage["sluice_pid"], stage["seq"])
            group.profiles = _trues(latest)  # one latest row a distinct profile id
        used: set[tuple[str, str, str]] = set()
        for (table, column), col in new:
            values = stage[col.name]
            if table in profiled:
                present = _trues(pc.and_(latest, pc.is_valid(values)))
            else:
                present = len(values) - values.null_count
            if present:
                used.add((group.schema, table, column))
        for (table, column), col in group.columns.items():
            if col.source.role == CONST and rows:
                used.add((group.schema, table, column))
        return used, discards

    def _patch(self, group: Group, col: Column, patches: dict[int, Any]) -> None:
        """The values Python made (by seq), patched into the group's Arrow stage."""
        stage = self._stages[group.stage]
        at = pc.index_in(stage["seq"], value_set=pa.array(list(patches), pa.int64()))
        values = pa.array(list(patches.values()), ARROW_TYPES[col.column_type])
        patched = pc.if_else(pc.is_valid(at), pc.take(values, at), stage[col.name])
        index = stage.column_names.index(col.name)
        self._set(group.stage, stage.set_column(index, col.name, patched), register=True)


def _latest_rows(pid: pa.ChunkedArray, seq: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each row is the latest (highest seq) of its profile id; false for rows without
    one (NULL or empty). Found on the two columns alone: filtering the whole stage copied every
    column of it, twice (seqs are unique in a stage)."""
    keyed = pa.table({"pid": pid, "seq": seq})
    keyed = keyed.filter(pc.and_kleene(pc.is_valid(pid), pc.not_equal(pid, "")))
    last = keyed.group_by("pid").aggregate([("seq", "max")])["seq_max"]
    return pc.is_in(seq, value_set=last)


def _trues(mask: pa.ChunkedArray) -> int:
    """How many values of a boolean column are true (NULL is not)."""
    return int(pc.sum(mask).as_py() or 0)
