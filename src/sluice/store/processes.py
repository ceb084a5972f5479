"""Worker process reports: which processes run the worker's units, and what they cost.

Each process of a worker (the delivery process, the batch process; on every node) writes a row
when it renews its leases: its lane, host and pid, CPU time and resident memory. `sluice status`
joins them with the leases (which units each process holds) and the cursors (their lag). A row
is removed when its process stops cleanly or its supervisor sees it die; a row that stopped
being renewed (a whole node gone) is shown as stale and dropped after a day.

One SQL text for both backends, as the retry set's (`store/retry_set.py`); the DDL alone differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.base_workers import ProcessReport
from sluice.store.dialect import Cursor, Dialect

PROCESSES_TABLE_SQLITE = """
CREATE TABLE IF NOT EXISTS worker_processes (
    holder TEXT PRIMARY KEY,
    lane TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    cpu_ms INTEGER NOT NULL,
    rss_kib INTEGER NOT NULL,
    restarts INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

PROCESSES_TABLE_POSTGRES = """
CREATE TABLE IF NOT EXISTS worker_processes (
    holder text COLLATE "C" PRIMARY KEY,
    lane text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at bigint NOT NULL,
    cpu_ms bigint NOT NULL,
    rss_kib bigint NOT NULL,
    restarts integer NOT NULL,
    updated_at bigint NOT NULL
);
"""

FORGET_AFTER_MS = 24 * 3600 * 1000
_COLUMNS = "holder, lane, host, pid, started_at, cpu_ms, rss_kib, restarts, updated_at"
_UPSERT = (
    f"INSERT INTO worker_processes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (holder) DO UPDATE SET lane = excluded.lane, host = excluded.host,"
    " pid = excluded.pid, started_at = excluded.started_at, cpu_ms = excluded.cpu_ms,"
    " rss_kib = excluded.rss_kib, restarts = excluded.restarts, updated_at = excluded.updated_at"
)


class ProcessReportsState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect` (the
    shared-SQL helpers of the retry set)."""

    _dialect: Dialect

    if TYPE_CHECKING:  # the store's own, earlier in its MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

    def report_process(self, report: ProcessReport) -> None:
        q = self._dialect
        row = (
            report.holder, report.lane, report.host, report.pid, report.started_at_ms,
            report.cpu_ms, report.rss_kib, report.restarts, report.updated_at_ms,
        )  # fmt: skip
        cutoff = int(time.time() * 1000) - FORGET_AFTER_MS

        def write(cur: Cursor) -> None:
            cur.execute(q(_UPSERT), row)
            cur.execute(q("DELETE FROM worker_processes WHERE updated_at < ?"), (cutoff,))

        self._retry_write(write)

    def processes(self) -> list[ProcessReport]:
        rows = self._retry_read(f"SELECT {_COLUMNS} FROM worker_processes ORDER BY host, holder")
        return [ProcessReport(str(r[0]), str(r[1]), str(r[2]), *map(int, r[3:])) for r in rows]

    def forget_process(self, holder: str) -> int:
        """Drop a process's report and every lease it held (it is known to be gone: its units
        are free for the next claim at once instead of after the lease period). Returns the
        number of leases released."""
        q = self._dialect

        def write(cur: Cursor) -> int:
            cur.execute(q("DELETE FROM worker_processes WHERE holder = ?"), (holder,))
            released = cur.execute(q("DELETE FROM leases WHERE holder = ?"), (holder,))
            return int(released.rowcount)

        result: int = self._retry_write(write)
        return result
