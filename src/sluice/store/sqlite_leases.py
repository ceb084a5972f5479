"""Leases, cursors and log trimming in the SQLite store.

On one machine every worker shares the SQLite file, so leases work as on PostgreSQL: a row per
consumer with its holder and expiry, taken in a write transaction queued on the writer lock.
Expiry is judged by SQLite's clock, which is this machine's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from sluice.store.base_workers import Lease

LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


class SqliteLeases:
    """Mixed into `SqliteStore`: uses its connection, its lock and its cross-process writer lock."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Any]

    def claim_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        ttl_ms = int(ttl_s * 1000)

        def claim(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                f"INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, {_NOW_MS} + ?)"
                f" ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                f" expires_at = excluded.expires_at"
                f" WHERE leases.holder = excluded.holder OR leases.expires_at <= {_NOW_MS}",
                (name, holder, ttl_ms),
            )
            return cur.rowcount == 1

        return bool(self._transaction(claim))

    def release_lease(self, name: str, holder: str) -> None:
        self._transaction(
            lambda db: db.execute(
                "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)
            )
        )

    def leases(self) -> list[Lease]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, holder, expires_at FROM leases ORDER BY name"
            ).fetchall()
        return [Lease(n, h, int(e)) for n, h, e in rows]

    def cursors(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT consumer, seq FROM cursors").fetchall()
        return {c: int(s) for c, s in rows}

    def trim_log(self, up_to_seq: int, received_before_ms: int) -> int:
        """Delete a prefix of the log in slices, each its own short write transaction.

        `seq` is the rowid, so each slice is a range delete on the table's own b-tree; slices keep
        the writer lock (which the collectors also need) held for milliseconds at a time. The
        newest event always stays: SQLite numbers a new row max(rowid) + 1, so an emptied log
        would hand out positions again from 1 and every consumer would skip the new events
        until they passed its old cursor.
        """
        total = 0
        while True:
            deleted = int(
                self._transaction(
                    lambda db: (
                        db.execute(
                            "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                            " WHERE seq <= ? AND seq < (SELECT max(seq) FROM events)"
                            " AND received_at < ? ORDER BY seq LIMIT 5000)",
                            (up_to_seq, received_before_ms),
                        ).rowcount
                    )
                )
            )
            total += deleted
            if deleted < 5000:
                return total
