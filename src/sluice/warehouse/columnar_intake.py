"""How a columnar chunk takes its pieces of the log: each event sorted into its group.

Rows (`StoredEvent`s) are looked at one by one in Python: other sources and
`integrations.Warehouses` (the few events that mention it are decoded) set aside, repeated
messageIds counted, the rest joined per group into Arrow columns. A whole chunk read column by
column (a SQLite log) is sorted with Arrow's kernels and the C passes instead
(intake_columns.py), with no Python object per event. Either way, what only the exact planner
can read hands the chunk to it with every event kept. Mixed into `Chunk` (columnar.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.store.base import StoredEvent
from sluice.store.columns import LogColumns
from sluice.warehouse.intake import events_table
from sluice.warehouse.intake_columns import split_columns
from sluice.warehouse.shape import ExactPlanNeeded
from sluice.warehouse.stage import GroupKey, event_name, events_arrow, wanted

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner

_decode = msgspec.json.Decoder().decode


class ChunkIntake:
    """Mixed into `Chunk`: its counts and the groups' pieces (`_parts`) it fills."""

    owner: ColumnarPlanner
    events: int
    last_seq: int
    skipped: int  # other sources, integrations.Warehouses
    duplicates: int
    _parts: dict[GroupKey, list[Any]]  # each group's pieces
    _seen: set[tuple[str, str]]  # (schema, messageId) of the chunk's events so far
    _aside: list[StoredEvent]  # events no group loads (kept for the exact planner)
    _exact: str | None  # why the exact planner must plan the chunk, once known
    _held: list[StoredEvent]  # pieces kept in Python once the chunk goes exact
    _by_columns: bool  # the chunk came as one `LogColumns`

    def _add(self, events: Sequence[StoredEvent] | LogColumns) -> None:
        if self._by_columns:
            raise RuntimeError("a chunk read column by column takes no further pieces")
        if isinstance(events, LogColumns):
            if self.events:  # columns come as a whole chunk (the loader reads them so)
                events = events.rows(range(len(events)))
            else:
                self._add_columns(events)
                return
        self.events += len(events)
        self.last_seq = events[-1].seq
        if self._exact is not None:
            self._held.extend(events)
            return
        planner = self.owner.planner
        sources, schema_of, warehouse_id = (
            planner.sources,
            planner.namer.schema,
            planner.warehouse_id,
        )
        seen, aside = self._seen, self._aside
        split: dict[GroupKey, list[StoredEvent]] = {}
        for index, e in enumerate(events):
            if sources and e.source_id not in sources:
                self.skipped += 1
                aside.append(e)
                continue
            payload = e.payload
            try:
                if b"Warehouses" in payload and not wanted(_decode(payload), warehouse_id):
                    self.skipped += 1
                    aside.append(e)
                    continue
                event = None
                if e.type == "track":
                    event = e.event or event_name(payload)
            except (msgspec.DecodeError, ExactPlanNeeded) as exc:
                self._exact = str(exc)
                for sorted_so_far in split.values():  # this piece's earlier events: kept too
                    self._held.extend(sorted_so_far)
                self._held.extend(events[index:])
                return
            key = (schema_of(e.source_id), e.message_id)
            if key in seen:  # the exact planner skips the whole event
                self.duplicates += 1
                aside.append(e)
                continue
            seen.add(key)
            group = (e.source_id, e.type, event)
            part = split.get(group)
            if part is None:
                split[group] = [e]
            else:
                part.append(e)
        try:
            pieces = [(group, events_arrow(part)) for group, part in split.items()]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            self._exact = "a payload is not UTF-8 text"
            for part in split.values():
                self._held.extend(part)
            return
        for group, piece in pieces:
            self._parts.setdefault(group, []).append(piece)

    def _add_columns(self, columns: LogColumns) -> None:
        """A whole chunk read column by column (store/columns.py): sorted into groups with
        Arrow's kernels and the C passes the lake uses (intake_columns.py), with no Python
        object per event; `ExactPlanNeeded` there hands the chunk to the exact planner, as
        `_add` does."""
        self._by_columns = True
        self.events += len(columns)
        self.last_seq = columns.last_seq
        planner = self.owner.planner
        try:
            piece = split_columns(
                columns, planner.sources, planner.namer.schema, planner.warehouse_id
            )
            tables = [(group, events_table(part)) for group, part in piece.parts.items()]
        except ExactPlanNeeded as exc:
            self._exact = str(exc)
            self._held.extend(columns.rows(range(len(columns))))
            return
        self.skipped += piece.skipped
        self.duplicates += piece.duplicates
        self._aside.extend(piece.aside)
        for group, table in tables:
            self._parts.setdefault(group, []).append(table)
