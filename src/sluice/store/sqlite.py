"""The embedded store: the event log, control plane and counters in one SQLite file (WAL mode).

Why the log looks like this: appends are the hot path, so a log row is a plain integer-keyed
append (`seq` is the rowid) with no secondary index; a group commit is one `executemany`.
Deduplication uses an in-memory set rebuilt from the log (`store/dedupe.py`), caught up inside the
write transaction, so it stays exact when several processes append to one file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sluice.store.base_event_store import (
    AppendBatch,
    EventQuery,
    StoredEvent,
    StoredRejection,
    stored_event,
)
from sluice.store.columns import READ_KINDS, LogColumns
from sluice.store.common import TimelinePruning
from sluice.store.dedupe import SeenIds
from sluice.store.errors import StoreUnavailable
from sluice.store.oauth_tokens import OAUTH_TOKENS_TABLE_SQLITE, OAuthTokensState
from sluice.store.processes import PROCESSES_TABLE_SQLITE, ProcessReportsState
from sluice.store.regulations import REGULATIONS_TABLES_SQLITE, RegulationsState
from sluice.store.retry_set import DeliveredPruning
from sluice.store.retry_set_schema import RETRY_SET_TABLE_SQLITE
from sluice.store.sqlite_append import SqliteAppends
from sluice.store.sqlite_control_plane import CONTROL_PLANE_SCHEMA, SqliteControlPlane
from sluice.store.sqlite_dedupe import SqliteSeenIds
from sluice.store.sqlite_delivery import DELIVERY_SCHEMA, SqliteDeliveryState
from sluice.store.sqlite_leases import LEASES_SCHEMA, SqliteLeases
from sluice.store.sqlite_read import (
    CompiledReads,
    ReadTrouble,
    tolerating_bad_text,
)
from sluice.store.unit_stats import UNIT_STATS_TABLE_SQLITE, UnitStatsState

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT,
    received_at INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    source_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (source_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
    consumer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
"""

_EVENT_COLUMNS = "seq, source_id, message_id, type, event, received_at, payload"
_READ_AFTER = f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


class SqliteStore(
    SqliteSeenIds,
    SqliteAppends,
    SqliteControlPlane,
    SqliteDeliveryState,
    SqliteLeases,
    ProcessReportsState,
    UnitStatsState,
    OAuthTokensState,
    RegulationsState,
):
    """`EventStore` on one SQLite file; safe to share between threads of one process."""

    keeps_newest_event = True  # new rows are numbered max(seq) + 1 (store/regulations.py)
    _secure_delete_sql = "PRAGMA secure_delete=ON"

    def __init__(
        self,
        path: Path,
        *,
        dedupe_window_s: int = 24 * 3600,
        synchronous: str = "full",
        keep_rejections: int = 10_000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
        self.path = path
        self._lock_fd = os.open(str(path) + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._keep_rejections = keep_rejections
        self._trouble = ReadTrouble()  # what reads met, recorded once each read is over
        self._reads = CompiledReads(
            path, _READ_AFTER, StoredEvent, self._db, self._lock, self._trouble
        )
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=30000")
        # executescript commits by itself, so the schema is its own script-level transaction.
        with self._lock, self._writer_lock():
            try:
                db.executescript(
                    "BEGIN IMMEDIATE;"
                    + SCHEMA
                    + CONTROL_PLANE_SCHEMA
                    + DELIVERY_SCHEMA
                    + RETRY_SET_TABLE_SQLITE
                    + LEASES_SCHEMA
                    + PROCESSES_TABLE_SQLITE
                    + UNIT_STATS_TABLE_SQLITE
                    + OAUTH_TOKENS_TABLE_SQLITE
                    + REGULATIONS_TABLES_SQLITE
                    + "COMMIT;"
                )
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        self._seen = SeenIds(int(dedupe_window_s) * 1000)
        # Counters ride along with appends but are written at most every COUNTER_FLUSH_S: the
        # upsert cost a tenth of a small group commit. A crash loses at most that much counting,
        # never an event.
        self._unflushed: dict[tuple[str, str], int] = {}
        self._counters_flushed = 0.0
        self._seen_seq: int | None = None  # log position the set is caught up to; None = not loaded
        self._timeline_pruning = TimelinePruning()
        self._delivered_pruning = DeliveredPruning()

    def _transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `fn` in one write transaction, queued behind every other process's writers."""
        db = self._db
        with self._lock, self._writer_lock():
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return result

    # --- event log -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """Queue writers of all processes on a file lock instead of SQLite's busy-sleep loop.

        SQLite's busy handler retries by sleeping, which measured here at over a second of p99
        latency with two collector processes; a blocking `flock` wakes the next writer at once.
        """
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        """Read in C where this install can (sqlite_read.py: a third of the CPU), else in Python."""
        events = self._reads.read(seq, limit)
        if events is None:
            with self._lock:
                rows = self._fetch(_READ_AFTER, (seq, limit))
            events = list(map(stored_event, rows))
        self._record_trouble()
        return events

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of a query on the log (under `_lock`), a messageId that is not UTF-8
        included (`tolerating_bad_text`)."""
        db = self._db

        def fetch() -> list[Any]:
            return db.execute(sql, params).fetchall()

        return tolerating_bad_text(db, self.path, self._trouble, fetch)

    def read_columns(self, seq: int, limit: int) -> LogColumns | None:
        """As `read_after`, column by column (columns.py); None where the compiled reader
        cannot read (the caller then reads rows)."""
        read = self._reads.read_columns(READ_KINDS, seq, limit)
        self._record_trouble()
        return None if read is None else LogColumns.from_reader(*read)

    def newest(self, query: EventQuery) -> list[StoredEvent]:
        where = ["seq > ?"]
        params: list[Any] = [query.after_seq]
        for column, value in (
            ("source_id", query.source_id),
            ("type", query.type),
            ("event", query.event),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        params.append(query.limit)
        with self._lock:
            rows = self._fetch(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
                " ORDER BY seq DESC LIMIT ?",
                params,
            )
        self._record_trouble()
        return list(map(stored_event, rows))

    def rejections(self, limit: int, source_id: str | None = None) -> list[StoredRejection]:
        sql = "SELECT id, source_id, reason, detail, received_at, payload FROM rejections"
        params: list[Any] = []
        if source_id is not None:
            sql += " WHERE source_id = ?"
            params.append(source_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [StoredRejection(*r) for r in rows]

    def last_seq(self) -> int:
        with self._lock:
            value = self._db.execute("SELECT max(seq) FROM events").fetchone()[0]
        return int(value or 0)

    # --- cursors ---------------------------------------------------------------------------
    def get_cursor(self, consumer: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM cursors WHERE consumer = ?", (consumer,)
            ).fetchone()
        return int(row[0]) if row else 0

    def find_cursor(self, consumer: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM cursors WHERE consumer = ?", (consumer,)
            ).fetchone()
        return int(row[0]) if row else None

    def commit_cursor(self, consumer: str, seq: int) -> None:
        self._transaction(
            lambda db: db.execute(
                "INSERT INTO cursors (consumer, seq) VALUES (?, ?)"
                " ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
                (consumer, seq),
            )
        )

    # --- counters --------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute("SELECT source_id, name, value FROM counters").fetchall()
            result = {(s, n): int(v) for s, n, v in rows}
            for key, n in self._unflushed.items():
                result[key] = result.get(key, 0) + n
        return result

    # --- privacy ---------------------------------------------------------------------------
    def erase_freed(self) -> bool:
        """Checkpoint the WAL into the database and truncate it: its frames are old copies of
        pages, rows erased with secure_delete included (store/regulations.py)."""
        with self._lock, self._writer_lock():
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._unflushed:
            self.append(AppendBatch())
        self._reads.close()
        with self._lock:
            self._db.close()
            os.close(self._lock_fd)
