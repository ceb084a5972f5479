"""The columnar planner's checks of a staged group: counts, and values that do not fit.

One aggregate query per group counts its rows and profiles, proves the payloads' messageIds and
event names are the log's (else the exact planner takes the chunk) and says whether any value
was flagged (cast in SQL only where the result is surely what `types.fit` gives); the flagged
values go through `types.fit` in Python, each a `Discard` or a value set into the stage. It also
says which new columns some row fills: only those are added to the warehouse. Mixed into
`Chunk` (columnar.py); the lake's chunk keeps its stages in Arrow and overrides the SQL parts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.warehouse.base import Discard
from sluice.warehouse.planner import make_discard
from sluice.warehouse.readers import pointer
from sluice.warehouse.shape import CONST, PICK, VALUE, ExactPlanNeeded
from sluice.warehouse.sqlfit import literal, python_value
from sluice.warehouse.stage import ARROW_TYPES, Column, Group, profile_filter
from sluice.warehouse.types import Unfit, fit

if TYPE_CHECKING:
    from sluice.warehouse.columnar import ColumnarPlanner


class StageChecks:
    """Mixed into `Chunk`: uses its planner and its DuckDB cursors."""

    owner: ColumnarPlanner

    if TYPE_CHECKING:

        @property
        def db(self) -> duckdb.DuckDBPyConnection: ...  # the chunk's cursor for this thread

    _run: Callable[[str], None]
    _rows: Callable[[str], list[tuple[Any, ...]]]
    _row: Callable[[str], tuple[Any, ...]]

    def _check(
        self, group: Group
    ) -> tuple[set[tuple[str, str, str]], list[tuple[tuple[int, int, int], Discard]]]:
        """A group's counts, the checks a full scan makes, and its discarded values.

        Returns the (schema, table, column)s some row has a value in, and the discards.
        """
        used: set[tuple[str, str, str]] = set()
        discards: list[tuple[tuple[int, int, int], Discard]] = []
        planner = self.owner.planner
        flagged = list({id(c): c for c in group.columns.values() if c.flag}.values())
        known = planner.known(group.schema)
        new = [
            (key, c)
            for key, c in group.columns.items()
            if c.source.role != CONST and key[1] not in known.get(key[0], {})
        ]
        profiles = {lay.table for lay in group.layouts if lay.profile is not None}
        counted = [(key, c) for key, c in new if key[0] not in profiles]
        latest = [(key, c) for key, c in new if key[0] in profiles]
        track = group.key[1] == "track"
        profile = any(layout.profile for layout in group.layouts)
        aggregates = [
            "count(*)",
            "count(*) FILTER (WHERE sluice_id IS DISTINCT FROM message_id)",
            "count(DISTINCT sluice_pid) FILTER (WHERE sluice_pid <> '')" if profile else "0",
            f"count(*) FILTER (WHERE sluice_event IS DISTINCT FROM {literal(group.key[2])})"
            if track
            else "0",
            "coalesce(bool_or(sluice_flag), false)",
        ]
        row = self._row(f"SELECT {', '.join(aggregates)} FROM {group.stage}")
        if row[4]:  # which columns, and which values: asked of the flagged rows only
            for col in flagged:
                self._discards(group, col, discards)
        row = row[:4]
        usage = [
            f"count({c.value}) FILTER (WHERE TRUE{profile_filter(group, table)})"
            for (table, _), c in counted
        ]
        row = row[:4] + (
            self._row(f"SELECT {', '.join(usage)} FROM {group.stage}") if usage else ()
        )
        group.rows, bad_ids, group.profiles, bad_events = row[:4]
        if bad_ids or bad_events:
            raise ExactPlanNeeded("a payload's messageId or event differs from the log's")
        counts = list(row[4:])
        if latest:  # users/accounts keep the latest row per id: a column only its rows use
            counts += self._row(
                f"SELECT {', '.join(f'count({c.value})' for _, c in latest)} FROM"
                f" (SELECT * FROM {group.stage} WHERE sluice_pid IS NOT NULL AND sluice_pid <> ''"
                f" QUALIFY row_number() OVER (PARTITION BY sluice_pid ORDER BY seq DESC) = 1)"
            )
        for ((table, column), _), count in zip(counted + latest, counts, strict=True):
            if count:
                used.add((group.schema, table, column))
        for (table, column), col in group.columns.items():
            if col.source.role == CONST and group.rows:
                used.add((group.schema, table, column))
        return used, discards

    def _discards(
        self, group: Group, col: Column, out: list[tuple[tuple[int, int, int], Discard]]
    ) -> None:
        """The values behind a flag, through `types.fit`: a discard, or a value SQL could not
        make (a rarer timestamp form, a float Python prints otherwise), set in the stage."""
        source = col.source
        raw = f"json_extract(e.payload, '{pointer(source.path)}')::VARCHAR"
        alt = f"json_extract(e.payload, '{pointer(source.alt)}')::VARCHAR" if source.alt else "NULL"
        pid = "s.sluice_pid" if any(layout.profile for layout in group.layouts) else "NULL"
        rows = self._rows(
            f"SELECT s.seq, s.sluice_id, {pid}, {raw}, {alt} FROM {group.stage} s"
            f" JOIN sluice_e{group.index} e USING (seq) WHERE s.sluice_flag AND {col.flag}"
        )
        patches: dict[int, Any] = {}
        for position, layout in enumerate(group.layouts):
            columns = [c for (t, c), v in group.columns.items() if v is col and t == layout.table]
            for column in columns:
                order = list(layout.columns).index(column)
                for seq, row_id, profile_id, text, alt_text in rows:
                    if layout.profile is not None:
                        if profile_id is None or profile_id == "":
                            continue
                        row_id = profile_id
                    if source.role == PICK and (text is None or text == "null"):
                        value = python_value(alt_text, VALUE)  # the property's value
                    else:
                        value = python_value(text, source.role)
                    try:
                        patches[seq] = fit(value, col.column_type)
                    except Unfit as exc:
                        reason = exc.reason
                        discard = make_discard(
                            group.schema, layout.table, column, row_id, value, reason
                        )
                        out.append(((seq, position, order), discard))
        if patches:
            self._patch(group, col, patches)

    def _patch(self, group: Group, col: Column, patches: dict[int, Any]) -> None:
        """Set the values Python made (by seq) in the group's stage table (the lake's chunk
        patches its Arrow stage instead: lake/columnar.py)."""
        patch = pa.table(
            {
                "seq": pa.array(list(patches), pa.int64()),
                "v": pa.array(list(patches.values()), ARROW_TYPES[col.column_type]),
            }
        )
        self.db.register("sluice_patch", patch)
        try:
            self._run(
                f"UPDATE {group.stage} SET {col.name} = p.v FROM sluice_patch p"
                f" WHERE {group.stage}.seq = p.seq"
            )
        finally:
            self.db.unregister("sluice_patch")
