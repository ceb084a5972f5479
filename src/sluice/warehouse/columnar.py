"""A chunk of the log planned column-wise: the warehouse loader's fast path.

The exact planner (planner.py) decodes, flattens and types every event in Python, most of a
load's time. This planner reads the chunk's payloads in compiled code and DuckDB and does the
schema work once per group of events (the tracks of one event name, the pages, ...):

1. Each group has a tree of the key paths its events hold (shape.py), learnt by decoding its
   first events in Python. The compiled reader (readers.py, `_scan.c`) reads every known path
   of each event once and proves the event has no other key; DuckDB reads the few events it
   cannot vouch for. Events with another key are decoded in Python, the tree grows and the
   group is read again: rare once a load is under way.
2. Columns the table has keep their type; a new one takes the type of its first value in log
   order (`types.infer` on that value, found among the decoded events or by one query).
3. Values are cast to their column's type only where the result is surely what `types.fit`
   gives (the compiled reader, or sqlfit.py's SQL) and flagged otherwise; flagged values go
   through `types.fit` in Python: a `Discard`, or a value only Python makes, set into the stage.
4. The rows stay in DuckDB, in one stage table per group (stage.py); `TableBatch.staged` is a
   query over them, which a DuckDB warehouse inserts from and PostgreSQL reads as Arrow (sent
   as binary COPY), without Python touching a value. Groups are read two at a time: neither
   the compiled reader nor DuckDB holds the GIL.

Whatever the fast path cannot reproduce exactly (invalid JSON, a key without letters, two keys
naming one column, a key repeated in an object) raises `ExactPlanNeeded`: the loader then plans
that chunk with the exact planner.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.gcpause import gc_paused
from sluice.store.base import StoredEvent
from sluice.store.columns import LogColumns
from sluice.warehouse.base import Discard
from sluice.warehouse.columnar_checks import StageChecks
from sluice.warehouse.columnar_duckdb import ChunkCursors
from sluice.warehouse.columnar_intake import ChunkIntake
from sluice.warehouse.columnar_tables import TableCuts
from sluice.warehouse.columnar_types import ColumnTyping
from sluice.warehouse.planner import CappedCounts, Plan, Planner, capped_events
from sluice.warehouse.readers import CompiledReader
from sluice.warehouse.shape import (
    CALL_TABLES,
    ExactPlanNeeded,
    Node,
    Shaper,
    all_paths,
    discover,
    signature,
)
from sluice.warehouse.stage import (
    Group,
    GroupKey,
    Types,
    compiled_select,
    select_sql,
    stage_columns,
)

_decode = msgspec.json.Decoder().decode
SAMPLE_EVENTS = 200  # decoded in Python to learn a new group's keys
MAX_ROUNDS = 4  # times a chunk is read again because its keys grew


class ColumnarPlanner:
    """Plans chunks of the log in DuckDB, with one warehouse's names and known columns.

    `engine` is a DuckDB connection the stage tables can live in (`database`: e.g. an in-memory
    database attached to the warehouse's own DuckDB, so that its backend inserts from them
    directly); `instance` tells the backend whose they are. What it learns of each group's keys
    is kept from chunk to chunk.
    """

    takes_columns = True  # a chunk also takes a `LogColumns` (where the store reads them)

    def __init__(
        self,
        planner: Planner,
        engine: duckdb.DuckDBPyConnection,
        database: str = "memory",
        instance: object = None,
    ) -> None:
        self.planner = planner
        self.engine = engine
        self.database = database
        self.instance = instance
        self.shaper = Shaper(planner.flattener)
        self.trees: dict[GroupKey, Node] = {}
        self._numbers = itertools.count()

    def chunk(self) -> Chunk:
        return Chunk(self, next(self._numbers))


class Chunk(ChunkIntake, ColumnTyping, StageChecks, TableCuts, ChunkCursors):
    """One chunk of the log: events are added in pieces, then planned together.

    `add` sorts each event into its group without decoding it: other sources,
    `integrations.Warehouses` (the few events that mention it are decoded) and repeated
    messageIds are set aside and counted, the rest become Arrow columns per group. Rows are
    sorted in Python; a chunk read column by column (a SQLite log) with Arrow's kernels.
    """

    def __init__(self, owner: ColumnarPlanner, number: int) -> None:
        self.owner = owner
        self._main = owner.engine.cursor()
        self._local = threading.local()  # per-group work runs in threads, one cursor each
        self._run("SET TimeZone = 'UTC'")
        self.prefix = f"{owner.database}.sluice_c{number}"
        self.events = 0
        self.last_seq = 0
        self.skipped = 0  # other sources, integrations.Warehouses
        self.duplicates = 0
        self._parts: dict[GroupKey, list[Any]] = {}  # each group's pieces (`_gather`)
        self._arrows: dict[int, pa.Table] = {}  # group index -> its events, once planning
        self._seen: set[tuple[str, str]] = set()
        self._aside: list[StoredEvent] = []  # events no group loads (kept for the exact planner)
        self._tables: list[str] = []
        self._exact: str | None = None
        self._held: list[StoredEvent] = []  # pieces kept in Python once the chunk goes exact
        self._by_columns = False  # the chunk came as one `LogColumns`

    def add(self, events: Sequence[StoredEvent] | LogColumns) -> None:
        """Take one piece of the chunk (in log order); `LogColumns` where the planner
        `takes_columns`."""
        if not events:
            return
        with gc_paused():  # as when planning: every event stays alive until the load
            self._add(events)

    def plan(self, uuid_ts: datetime) -> Plan:
        """The chunk's plan; `ExactPlanNeeded` when the exact planner must make it."""
        if self._exact is not None:
            raise ExactPlanNeeded(self._exact)
        try:
            with gc_paused():
                return self._plan(uuid_ts)
        except duckdb.Error as exc:
            raise ExactPlanNeeded(f"DuckDB: {exc}") from exc
        except (msgspec.DecodeError, ValueError) as exc:
            raise ExactPlanNeeded(f"a payload that is not JSON: {exc}") from exc

    def pieces(self, size: int) -> Iterator[list[StoredEvent]]:
        """The chunk's events again, in log order and pieces of `size`, for the exact planner."""
        events = [*self._aside, *self._held]
        for (source_id, call, event), parts in self._parts.items():
            for part in parts:
                columns = part.to_pydict()
                events.extend(
                    StoredEvent(seq, source_id, message_id, call, event, 0, payload.encode())
                    for seq, message_id, payload in zip(
                        columns["seq"], columns["message_id"], columns["payload"], strict=True
                    )
                )
        events.sort(key=lambda e: e.seq)
        for start in range(0, len(events), size):
            yield events[start : start + size]

    def release(self) -> None:
        """Drop the chunk's stage tables (after its load, or when it is given up)."""
        for table in reversed(self._tables):
            self._run(f"DROP TABLE IF EXISTS {table}")
        self._tables.clear()
        self._main.close()

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, uuid_ts: datetime) -> Plan:
        planner = self.owner.planner
        groups: list[Group] = []
        for key, parts in self._parts.items():
            if key[1] not in CALL_TABLES:
                raise ExactPlanNeeded(f"events of type {key[1]!r} have no table")
            group = Group(len(groups), key, planner.namer.schema(key[0]))
            self._gather(group.index, parts)
            groups.append(group)
        for group in groups:
            self._register(self._main, group.index)
        self._sample(groups)
        for _ in range(MAX_ROUNDS):
            types = self._types(groups, uuid_ts)
            grown = any(self._each(groups, functools.partial(self._stage, types=types)))
            if not grown:
                break
            for group in groups:
                self._drop(group.stage)
        else:
            raise ExactPlanNeeded("the chunk's keys kept growing")
        self._check_warehouses_option(groups)
        discards: list[tuple[tuple[int, int, int], Discard]] = []
        used: set[tuple[str, str, str]] = set()
        for group_used, group_discards in self._each(groups, self._check):
            used |= group_used
            discards.extend(group_discards)
        capped = self._capped(groups, discards)
        batches, new_columns = self._batches(groups, types, used)
        # The plan stands: what it adds is now what the warehouse will have.
        for (schema, table), columns in types.items():
            known = planner.known(schema).setdefault(table, {})
            known.update((c, t) for c, t in columns.items() if t is not None)
        for (schema, table), (_, _, first) in capped.items():
            if first:
                planner.note_capped(schema, table)
        discards.sort(key=lambda d: d[0])
        return Plan(
            batches,
            [d for _, d in discards],
            new_columns,
            self.events,
            sum(g.rows for g in groups),
            self.skipped,
            self.duplicates,
            capped_events(capped),
        )

    def _gather(self, index: int, parts: list[Any]) -> None:
        """The group's events, from the pieces `add` sorted (the lake keeps its own kind)."""
        self._arrows[index] = pa.concat_tables(parts)

    def _first(self, group: Group) -> tuple[int, str]:
        """The seq and messageId of the group's first event."""
        events = self._arrows[group.index]
        return events["seq"][0].as_py(), events["message_id"][0].as_py()

    def _capped(
        self, groups: list[Group], discards: list[tuple[tuple[int, int, int], Discard]]
    ) -> CappedCounts:
        """Count the tracks of capped names, as the exact planner does event by event."""
        planner = self.owner.planner
        counts: CappedCounts = {}
        for group in sorted((g for g in groups if g.capped), key=self._first):
            text = group.key[2] or ""
            seq, row_id = self._first(group)
            table = planner.namer.event_table(text)
            discard = planner.count_capped(counts, group.schema, table, text, row_id, group.rows)
            if discard is not None:
                discards.append(((seq, -1, 0), discard))
        return counts

    def _register(self, db: duckdb.DuckDBPyConnection, index: int) -> None:
        db.register(f"sluice_e{index}", self._arrows[index])

    def _sample(self, groups: list[Group]) -> None:
        """Decode the first events of each group in Python: they start (or extend) its tree,
        and give new columns their first value."""
        for group in groups:
            first = self._arrows[group.index].slice(0, SAMPLE_EVENTS).to_pydict()
            tree = self.owner.trees.setdefault(group.key, Node())
            for seq, payload in zip(first["seq"], first["payload"], strict=True):
                msg = decode_payload(payload)
                discover(msg, tree)
                group.sample.append((seq, msg))
            group.complete = len(group.sample) < SAMPLE_EVENTS
            group.prefix_end = group.sample[-1][0] if group.sample else 0

    def _check_warehouses_option(self, groups: list[Group]) -> None:
        """Events that mention `integrations.Warehouses` were decided in `add`; an escaped key
        would have been missed there."""
        for group in groups:
            integrations = self.owner.trees[group.key].children.get("integrations", Node())
            if (
                "Warehouses" in integrations.children
                and self._row(
                    f"SELECT count(*) FROM sluice_e{group.index} WHERE"
                    f" json_extract(payload, '/integrations/Warehouses') IS NOT NULL"
                    f" AND NOT contains(payload, 'Warehouses')"
                )[0]
            ):
                raise ExactPlanNeeded("an escaped integrations.Warehouses key")

    def _stage(self, group: Group, types: Types) -> bool:
        """Read the group's events into its stage table; whether its tree grew (read again)."""
        tree = self.owner.trees[group.key]
        made = stage_columns(group, types)
        group.stage = f"{self.prefix}_g{group.index}"
        reader = CompiledReader(tree)
        read, irregular = f"sluice_r{group.index}", f"sluice_o{group.index}"
        outputs, select = compiled_select(group, made, read)
        read_rows, odd_events = reader.tables(self._arrows[group.index], outputs)
        tables = {read: read_rows}
        if odd_events.num_rows:  # DuckDB reads the irregular events (compiling it costs)
            tables[irregular] = odd_events
            select += f" UNION ALL {select_sql(group, made, reader.fallback, irregular)}"
        for name, rows in tables.items():
            self.db.register(name, rows)
        try:
            self._create(group.stage, select)
        finally:
            for name in tables:
                self.db.unregister(name)
        odd = self._rows(
            f"SELECT seq, e.payload FROM {group.stage} s"
            f" JOIN sluice_e{group.index} e USING (seq)"
            f" WHERE NOT s.sluice_ok ORDER BY seq"
        )
        if not odd:
            return False
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


def decode_payload(payload: str | bytes) -> Any:
    """msgspec, else the standard library for what msgspec refuses (1e400), as the exact
    planner decodes; a ValueError for what neither reads."""
    try:
        return _decode(payload)
    except msgspec.DecodeError:
        return json.loads(payload)
