"""The columnar planner with its stage in Arrow: the lake's fast path.

A DuckDB or PostgreSQL warehouse wants a chunk's rows in DuckDB (stage tables it inserts from,
or reads as Arrow for COPY). A lake only wants Arrow tables, and copying the compiled reader's
Arrow columns into DuckDB tables and reading them back cost more than reading the JSON
(docs/lake.md "Figures"). So here each group's stage *is* the compiled reader's Arrow table (plus
its constant columns; the few irregular events DuckDB reads are appended to it), checked and
counted in Arrow, and patched in Arrow where Python types a flagged value. Batches are Arrow
tables cut from the stages (`ArrowRows`). A group's events keep the log's payloads (intake.py),
which the compiled reader reads in place; DuckDB gets a stage or the events in Arrow only for
the queries that read them (flagged values, first values, `Warehouses`).

Everything else (groups, trees, types, discards, the event-table cap, the fallback to the exact
planner) is `columnar.Chunk`'s own, so the lake plans as every warehouse does: tests/lake
compares the lake read back with the DuckDB warehouse loaded from the same log.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from sluice.lake.columnar_checks import ArrowStageChecks
from sluice.lake.columnar_tables import ArrowTables
from sluice.lake.scanning import read_events
from sluice.store.base import StoredEvent
from sluice.store.columns import LogColumns
from sluice.warehouse import compiled
from sluice.warehouse.base import Discard
from sluice.warehouse.columnar import SAMPLE_EVENTS, Chunk, ColumnarPlanner, decode_payload
from sluice.warehouse.intake import Events, events_table, joined, split
from sluice.warehouse.intake_columns import split_columns
from sluice.warehouse.planner import Plan
from sluice.warehouse.readers import CompiledReader
from sluice.warehouse.shape import (
    CONST,
    ExactPlanNeeded,
    Node,
    Path,
    Source,
    all_paths,
    discover,
    signature,
)
from sluice.warehouse.stage import (
    ARROW_TYPES,
    Column,
    Group,
    TableKey,
    Types,
    compiled_select,
    select_sql,
    stage_columns,
)
from sluice.warehouse.types import Unfit, fit


class LakePlanner(ColumnarPlanner):
    """`ColumnarPlanner` whose chunks keep their stage in Arrow (see the module's docstring)
    and take a chunk of the log column by column where the store reads it so."""

    takes_columns = True

    def chunk(self) -> Chunk:
        return LakeChunk(self, next(self._numbers))


class LakeChunk(ArrowStageChecks, ArrowTables, Chunk):
    """A chunk whose stage tables are Arrow tables registered in DuckDB, not DuckDB tables."""

    def __init__(self, owner: ColumnarPlanner, number: int) -> None:
        super().__init__(owner, number)
        self._stages: dict[str, pa.Table] = {}
        self._ids: dict[str, set[str]] = {}  # messageIds per schema (`Chunk._seen`)
        self._events: dict[int, Events] = {}  # group index -> its events (payloads not copied)
        self._pending: list[Sequence[StoredEvent] | LogColumns] = []  # read, not yet split

    def _add(self, events: Sequence[StoredEvent] | LogColumns) -> None:
        """Kept as read: the chunk's pieces are sorted into groups when it is planned, all at
        once (`_split`), so that each group's events come as one `Events`, not one a piece
        joined afterwards (a new tuple of every payload: ~0.1 s of CPU per 1,000,000 events).
        A chunk read column by column (store/columns.py) is one piece."""
        self.events += len(events)
        self.last_seq = events.last_seq if isinstance(events, LogColumns) else events[-1].seq
        self._pending.append(events)

    def _plan(self, uuid_ts: datetime) -> Plan:
        self._split()
        return super()._plan(uuid_ts)

    def _split(self) -> None:
        """As `Chunk._add` on the chunk's events, column-wise (intake.py); on `ExactPlanNeeded`
        the exact planner gets them all."""
        pending, self._pending = self._pending, []
        planner = self.owner.planner
        if len(pending) == 1 and isinstance(pending[0], LogColumns):
            columns = pending[0]
            try:
                piece = split_columns(
                    columns, planner.sources, planner.namer.schema, planner.warehouse_id
                )
            except ExactPlanNeeded as exc:
                self._exact = str(exc)
                self._held.extend(columns.rows(range(len(columns))))
                raise
        else:
            events = list(itertools.chain(*map(_rows, pending)))
            if not events:
                return
            try:
                piece = split(
                    events, planner.sources, planner.namer.schema, planner.warehouse_id, self._ids
                )
            except ExactPlanNeeded as exc:
                self._exact = str(exc)
                self._held.extend(events)
                raise
        self.skipped += piece.skipped
        self.duplicates += piece.duplicates
        self._aside.extend(piece.aside)
        for group, part in piece.parts.items():
            self._parts.setdefault(group, []).append(part)

    def pieces(self, size: int) -> Iterator[list[StoredEvent]]:
        """The chunk's events again, in log order and pieces of `size`, for the exact planner."""
        events = [*self._aside, *self._held, *itertools.chain(*map(_rows, self._pending))]
        for (source_id, call, event), parts in self._parts.items():
            for part in parts:
                events.extend(
                    StoredEvent(seq, source_id, message_id, call, event, 0, payload)
                    for seq, message_id, payload in zip(
                        part.seq.to_pylist(),
                        part.message_id.to_pylist(),
                        part.payloads,
                        strict=True,
                    )
                )
        events.sort(key=lambda e: e.seq)
        for start in range(0, len(events), size):
            yield events[start : start + size]

    def release(self) -> None:
        self._pending.clear()
        self._stages.clear()
        self._events.clear()
        super().release()

    # -- the group's events: payloads as the log has them, in Arrow only when DuckDB asks ------

    def _gather(self, index: int, parts: list[Any]) -> None:
        self._events[index] = joined(parts)

    def _first(self, group: Group) -> tuple[int, str]:
        events = self._events[group.index]
        return events.seq[0].as_py(), events.message_id[0].as_py()

    def _register(self, db: duckdb.DuckDBPyConnection, index: int) -> None:
        """Only the events already in Arrow: stages are registered where a query reads them
        (`_discards`; `_check` counts in Arrow)."""
        if index in self._arrows:
            db.register(f"sluice_e{index}", self._arrows[index])

    def _arrow(self, group: Group) -> pa.Table:
        """The group's events as Arrow (made once), registered on this thread's cursor: for the
        few queries that read payloads (first values, flagged values, `Warehouses`)."""
        table = self._arrows.get(group.index)
        if table is None:
            table = self._arrows[group.index] = events_table(self._events[group.index])
        self.db.register(f"sluice_e{group.index}", table)
        return table

    def _sample(self, groups: list[Group]) -> None:
        """Decode the first events of the groups this planner has no tree for yet.

        A group whose tree an earlier chunk learnt is not decoded again: its events with a key
        the tree lacks are found and decoded when it is read (`_stage`), and a column's first
        value is then asked of DuckDB (`_first_values_sql`), as for a group past its sample.
        """
        for group in groups:
            if group.key in self.owner.trees:
                continue
            tree = self.owner.trees[group.key] = Node()
            events = self._events[group.index]
            seqs = events.seq.slice(0, SAMPLE_EVENTS).to_pylist()
            for seq, payload in zip(seqs, events.payloads[:SAMPLE_EVENTS], strict=True):
                msg = decode_payload(payload)
                discover(msg, tree)
                group.sample.append((seq, msg))
            group.complete = len(group.sample) < SAMPLE_EVENTS
            group.prefix_end = group.sample[-1][0] if group.sample else 0

    def _first_values_sql(
        self, group: Group, asks: list[tuple[tuple[TableKey, str], Source, Path | None]]
    ) -> Iterator[tuple[tuple[TableKey, str], int, Any]]:
        self._arrow(group)
        return super()._first_values_sql(group, asks)

    def _check_warehouses_option(self, groups: list[Group]) -> None:
        for group in groups:
            integrations = self.owner.trees[group.key].children.get("integrations", Node())
            if "Warehouses" in integrations.children:
                self._arrow(group)
        super()._check_warehouses_option(groups)

    def _discards(
        self, group: Group, col: Column, out: list[tuple[tuple[int, int, int], Discard]]
    ) -> None:
        self._arrow(group)
        self.db.register(group.stage, self._stages[group.stage])
        super()._discards(group, col, out)

    def _drop(self, table: str) -> None:
        self._stages.pop(table, None)

    def _stage(self, group: Group, types: Types) -> bool:
        """Read the group's events into its Arrow stage; whether its tree grew (read again)."""
        tree = self.owner.trees[group.key]
        made = stage_columns(group, types)
        group.stage = _stage_name(group.index)
        reader = CompiledReader(tree)
        outputs, _ = compiled_select(group, made, "sluice_r")
        events = self._events[group.index]
        if compiled.scan() is None:  # not built: DuckDB reads every event, from Arrow
            read_rows, odd_events = reader.tables(self._arrow(group), outputs)
        else:
            read_rows, odd_events = read_events(reader, events, outputs)
        odd_count = odd_events.num_rows
        if odd_count and read_rows.num_rows:  # (no rows at all: the reader is not built)
            read_rows = read_rows.filter(pc.invert(read_rows["sluice_odd"]))
        rows = read_rows.num_rows
        columns: dict[str, Any] = {}
        for name in ("seq", "message_id", "sluice_id", "sluice_pid"):
            if name in read_rows.column_names:
                columns[name] = read_rows[name]
        for (source, column_type), col in made.items():
            if source.role == CONST:
                try:
                    value = fit(source.const, column_type)
                except Unfit as exc:
                    raise ExactPlanNeeded(f"a constant column does not fit: {exc}") from exc
                scalar = pa.scalar(value, ARROW_TYPES[column_type])
                columns[col.name] = pa.repeat(scalar, rows)
            else:
                columns[col.name] = read_rows[col.name]
        columns["sluice_flag"] = read_rows["sluice_flag"]
        if "sluice_event" in read_rows.column_names:
            columns["sluice_event"] = read_rows["sluice_event"]
        columns["sluice_ok"] = read_rows["sluice_read_ok"]
        stage = pa.table(columns)
        if odd_count:  # DuckDB reads the irregular events, as the other warehouses' stage does
            self.db.register("sluice_o", odd_events)
            try:
                select = select_sql(group, made, reader.fallback, "sluice_o")
                extra = self.db.sql(select).to_arrow_table()
            finally:
                self.db.unregister("sluice_o")
            extra = extra.rename_columns(stage.column_names).cast(stage.schema)
            stage = pa.concat_tables([stage, extra])
        self._set(group.stage, stage)
        not_ok = pc.invert(stage["sluice_ok"])
        if not pc.any(not_ok).as_py():
            return False
        seqs = stage["seq"].filter(not_ok).combine_chunks()
        at = pc.indices_nonzero(pc.is_in(events.seq, value_set=seqs)).to_pylist()
        odd = [(events.seq[i].as_py(), events.payloads[i]) for i in at]  # in log order
        before, known = signature(tree), set(all_paths(tree))
        sampled = {seq for seq, _ in group.sample}
        for seq, payload in odd:
            msg = decode_payload(payload)
            discover(msg, tree)
            if seq not in sampled:
                group.sample.append((seq, msg))
        group.sample.sort(key=lambda item: item[0])
        if signature(tree) == before:
            raise ExactPlanNeeded("a JSON object repeats a key")
        group.fresh.update(set(all_paths(tree)) - known)
        return True

    def _set(self, name: str, stage: pa.Table, register: bool = False) -> None:
        self._stages[name] = stage
        if register:
            self.db.register(name, stage)


def _rows(piece: Sequence[StoredEvent] | LogColumns) -> Sequence[StoredEvent]:
    """A piece as `StoredEvent`s (a chunk read column by column made into rows)."""
    return piece.rows(range(len(piece))) if isinstance(piece, LogColumns) else piece


def _stage_name(index: int) -> str:
    return f"sluice_s{index}"
