"""The SQLite store's append: a group commit of events, rejections and held-back counters.

One write transaction, queued on the cross-process writer lock: the dedupe window is caught up
on other processes' rows (sqlite_dedupe.py), the group's new events written in one
`executemany`, and counters flushed at most every `COUNTER_FLUSH_S`. The hot path of the
collector, so a module of its own, apart from the store's reads, cursors and control plane (why
the log looks as it does is sqlite.py's docstring). Mixed into `SqliteStore`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from sluice.store.base_event_store import AppendBatch, AppendResult
from sluice.store.common import count_stored
from sluice.store.dedupe import SeenIds
from sluice.store.sqlite_read import RecordsReadTrouble

COUNTER_FLUSH_S = 0.25
_UPSERT_COUNTER = (
    "INSERT INTO counters (source_id, name, value) VALUES (?, ?, ?)"
    " ON CONFLICT (source_id, name) DO UPDATE SET value = value + excluded.value"
)


class SqliteAppends(RecordsReadTrouble):
    """Mixed into `SqliteStore`: uses its connection, its locks, the dedupe window and the
    counters held back between appends."""

    _db: sqlite3.Connection
    _lock: threading.Lock
    _keep_rejections: int
    _seen: SeenIds
    _seen_seq: int | None
    _unflushed: dict[tuple[str, str], int]
    _counters_flushed: float

    if TYPE_CHECKING:  # SqliteStore's and SqliteSeenIds', in the MRO: no stub to shadow them

        def _writer_lock(self) -> contextlib.AbstractContextManager[None]: ...

        def _catch_up(self) -> None: ...

    def append(self, batch: AppendBatch) -> AppendResult:
        db = self._db
        with self._lock, self._writer_lock():
            db.execute("BEGIN IMMEDIATE")
            try:
                self._catch_up()
                seen = self._seen
                # A copy: a failed append must leave the held-back counters as they were.
                counters = dict(self._unflushed)
                for key, n in batch.counters.items():
                    counters[key] = counters.get(key, 0) + n
                # NewEvent tuples are the rows, in the INSERT's column order.
                rows = [
                    e for e in batch.events if not seen.is_duplicate(e.message_id, e.received_at_ms)
                ]
                count_stored(counters, batch.events, rows)
                if rows:
                    db.executemany(
                        "INSERT INTO events (source_id, message_id, type, event, received_at,"
                        " payload) VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    # After the catch-up `_seen_seq` is the log's end, and SQLite gives new rows
                    # max(seq) + 1, + 2, ... while this transaction holds the write lock.
                    self._seen_seq = (self._seen_seq or 0) + len(rows)
                if batch.rejections:
                    self._insert_rejections(batch)
                now = time.monotonic()
                flush = counters and (not rows or now - self._counters_flushed >= COUNTER_FLUSH_S)
                if flush:
                    db.executemany(_UPSERT_COUNTER, [(s, n, v) for (s, n), v in counters.items()])
                db.execute("COMMIT")
                if flush:
                    self._unflushed = {}
                    self._counters_flushed = now
                else:
                    self._unflushed = counters
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                # Rebuild the seen set: it may hold ids that never committed. The counters of
                # this batch stay in `_unflushed`: the caller answers with an error, and the
                # events' retry will count again, which is what happened (received twice).
                self._seen_seq = None
                raise
        self._record_trouble()
        return AppendResult(stored=len(rows), duplicates=len(batch.events) - len(rows))

    def _insert_rejections(self, batch: AppendBatch) -> None:
        db = self._db
        cur = db.executemany(
            "INSERT INTO rejections (source_id, reason, detail, received_at, payload)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (r.source_id, r.reason, r.detail, r.received_at_ms, r.payload)
                for r in batch.rejections
            ],
        )
        last = db.execute("SELECT max(id) FROM rejections").fetchone()[0] or 0
        if cur.rowcount and last % 100 < cur.rowcount and last > self._keep_rejections:
            db.execute("DELETE FROM rejections WHERE id <= ?", (last - self._keep_rejections,))
