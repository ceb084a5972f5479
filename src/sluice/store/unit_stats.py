"""What batch units report of their work, for metrics: a warehouse's loads, rows and position.

A warehouse keeps its load position in the warehouse itself (exactly once), and reading it means
opening the warehouse: a DuckDB file a load may hold locked for seconds. A scrape of `/metrics`
must not wait for that, so each loader adds what a load did to these counters after the load
(`add`) and records where it got to (`set`): a scrape reads one small table. The values are
reports, not the truth: the warehouse's own position stays what loads resume from.

One SQL text for both backends, as the retry set's (`store/retry_set.py`); the DDL alone differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.dialect import Cursor, Dialect

UNIT_STATS_TABLE_SQLITE = """
CREATE TABLE IF NOT EXISTS unit_stats (
    unit TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (unit, name)
) WITHOUT ROWID;
"""

UNIT_STATS_TABLE_POSTGRES = """
CREATE TABLE IF NOT EXISTS unit_stats (
    unit text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    value bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (unit, name)
);
"""

_ADD = (
    "INSERT INTO unit_stats (unit, name, value, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (unit, name) DO UPDATE SET value = unit_stats.value + excluded.value,"
    " updated_at = excluded.updated_at"
)
_SET = (
    "INSERT INTO unit_stats (unit, name, value, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (unit, name) DO UPDATE SET value = excluded.value,"
    " updated_at = excluded.updated_at"
)


class UnitStatsState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect`."""

    _dialect: Dialect

    if TYPE_CHECKING:  # the store's own, earlier in its MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

    def record_unit_stats(
        self, unit: str, now_ms: int, add: Mapping[str, int], set_to: Mapping[str, int]
    ) -> None:
        """Add to counters and set gauges of one unit (e.g. "warehouse:main"), in one write."""
        q = self._dialect
        added = [(unit, name, int(v), now_ms) for name, v in add.items()]
        assigned = [(unit, name, int(v), now_ms) for name, v in set_to.items()]

        def write(cur: Cursor) -> None:
            for sql, rows in ((_ADD, added), (_SET, assigned)):
                for row in rows:
                    cur.execute(q(sql), row)

        self._retry_write(write)

    def unit_stats(self) -> dict[str, dict[str, int]]:
        """{unit: {name: value}} of every unit that reported."""
        result: dict[str, dict[str, int]] = {}
        for unit, name, value in self._retry_read("SELECT unit, name, value FROM unit_stats"):
            result.setdefault(str(unit), {})[str(name)] = int(value)
        return result

    def forget_unit_stats(self, unit: str) -> None:
        """Drop a unit's reports (a warehouse removed from the workspace)."""
        q = self._dialect
        self._retry_write(
            lambda cur: cur.execute(q("DELETE FROM unit_stats WHERE unit = ?"), (unit,))
        )
