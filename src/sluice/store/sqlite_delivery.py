"""Delivery state in the SQLite store: consumer steps, the retry set, parked events, stats.

A consumer step (read events, deliver them, advance the cursor) commits in one transaction:
the new cursor, the log range it covered (so `sluice trace` can say when an event was delivered
without a row per event), parked events, counters, the latency histogram and one upsert of the
minute's timeline bucket. Parked events are never deleted by Sluice: an operator's resend marks
them `resent`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sluice.store.base_delivery import DeliveryCommit, ParkedEvent
from sluice.store.base_event_store import StoredEvent
from sluice.store.common import (
    TimelinePruning,
    latency_counts,
    minute_of,
    timeline_buckets,
    timeline_step,
)
from sluice.store.dialect import SQLITE, Cursor
from sluice.store.retry_set import RetrySetState
from sluice.store.retry_set_operators import RetrySetOperations

DELIVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_steps (
    destination TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (destination, last_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    parked_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'parked'
);
CREATE INDEX IF NOT EXISTS parked_by_destination ON parked (destination, state, id);
CREATE INDEX IF NOT EXISTS parked_by_message ON parked (message_id);
CREATE TABLE IF NOT EXISTS delivery_counters (
    destination TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (destination, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_latency (
    destination TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (destination, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_timeline (
    destination TEXT NOT NULL,
    minute INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    filtered INTEGER NOT NULL,
    parked INTEGER NOT NULL,
    retrying INTEGER NOT NULL,
    PRIMARY KEY (destination, minute)
) WITHOUT ROWID;
"""

_PARKED_COLUMNS = (
    "id, destination, message_id, seq, parked_at, reason, attempts, request, response, payload,"
    " state"
)


class SqliteDeliveryState(RetrySetState, RetrySetOperations):
    """Mixed into `SqliteStore`: uses its connection, its lock and its cross-process writer lock."""

    _dialect = SQLITE

    _db: sqlite3.Connection
    _lock: threading.Lock
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Any]
    _timeline_pruning: TimelinePruning

    def commit_delivery(self, commit: DeliveryCommit) -> None:
        dest = commit.destination

        def write(db: sqlite3.Connection) -> None:
            if commit.cursor is not None:
                db.execute(
                    "INSERT INTO cursors (consumer, seq) VALUES (?, ?)"
                    " ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq",
                    (commit.consumer, commit.cursor),
                )
            if commit.last_seq >= commit.first_seq > 0:
                db.execute(
                    "INSERT OR REPLACE INTO delivery_steps VALUES (?, ?, ?, ?, ?)",
                    (
                        dest,
                        commit.first_seq,
                        commit.last_seq,
                        commit.finished_at_ms,
                        commit.attempts,
                    ),
                )
            if commit.parked:
                db.executemany(
                    "INSERT INTO parked (destination, message_id, seq, parked_at, reason, attempts,"
                    " request, response, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (dest, p.message_id, p.seq, commit.finished_at_ms, p.reason, p.attempts,
                         p.request, p.response, p.payload)
                        for p in commit.parked
                    ],
                )  # fmt: skip
            self._write_retry_changes(db, commit)
            if commit.resent_parked_ids:
                db.executemany(
                    "UPDATE parked SET state = 'resent' WHERE id = ?",
                    [(i,) for i in commit.resent_parked_ids],
                )
            if commit.counters:
                db.executemany(
                    "INSERT INTO delivery_counters VALUES (?, ?, ?) ON CONFLICT (destination, name)"
                    " DO UPDATE SET value = value + excluded.value",
                    [(dest, name, n) for name, n in commit.counters.items() if n],
                )
            if commit.latencies_ms:
                db.executemany(
                    "INSERT INTO delivery_latency VALUES (?, ?, ?) ON CONFLICT (destination,"
                    " bucket_ms) DO UPDATE SET count = count + excluded.count",
                    [(dest, bound, n) for bound, n in latency_counts(commit.latencies_ms)],
                )
            delivered, filtered, parked = timeline_step(commit.counters)
            if delivered or filtered or parked:
                minute = minute_of(commit.finished_at_ms)
                self._prune_timeline(db, dest, minute)
                db.execute(
                    "INSERT INTO delivery_timeline VALUES (?, ?, ?, ?, ?, 0)"
                    " ON CONFLICT (destination, minute) DO UPDATE SET"
                    " delivered = delivered + excluded.delivered,"
                    " filtered = filtered + excluded.filtered, parked = parked + excluded.parked",
                    (dest, minute, delivered, filtered, parked),
                )

        self._transaction(write)

    def _prune_timeline(self, db: sqlite3.Connection, destination: str, minute: int) -> None:
        cutoff = self._timeline_pruning.cutoff(destination, minute)
        if cutoff is not None:
            db.execute(
                "DELETE FROM delivery_timeline WHERE destination = ? AND minute < ?",
                (destination, cutoff),
            )

    def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any:
        return self._transaction(fn)

    def parked(
        self,
        destination: str | None = None,
        states: Sequence[str] = ("parked",),
        limit: int = 100,
        *,
        newest_first: bool = False,
    ) -> list[ParkedEvent]:
        where = [f"state IN ({', '.join('?' for _ in states)})"]
        params: list[Any] = list(states)
        if destination is not None:
            where.append("destination = ?")
            params.append(destination)
        params.append(limit)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_PARKED_COLUMNS} FROM parked WHERE {' AND '.join(where)}"
                f" ORDER BY id{' DESC' if newest_first else ''} LIMIT ?",
                params,
            ).fetchall()
        return [ParkedEvent(*r) for r in rows]

    def parked_counts(self, states: Sequence[str] = ("parked",)) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT destination, count(*) FROM parked"
                f" WHERE state IN ({', '.join('?' for _ in states)}) GROUP BY destination",
                list(states),
            ).fetchall()
        return {d: int(n) for d, n in rows}

    def parked_for_message(self, message_id: str) -> list[ParkedEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_PARKED_COLUMNS} FROM parked WHERE message_id = ? ORDER BY id",
                (message_id,),
            ).fetchall()
        return [ParkedEvent(*r) for r in rows]

    def request_parked_retry(self, destination: str | None, ids: Sequence[int] = ()) -> int:
        def write(db: sqlite3.Connection) -> int:
            sql = "UPDATE parked SET state = 'retry_requested' WHERE state = 'parked'"
            params: list[Any] = []
            if destination is not None:
                sql += " AND destination = ?"
                params.append(destination)
            if ids:
                sql += f" AND id IN ({', '.join('?' for _ in ids)})"
                params.extend(ids)
            return db.execute(sql, params).rowcount

        changed: int = self._transaction(write)
        return changed

    def repark(
        self, parked_id: int, reason: str, attempts: int, request: bytes, response: bytes
    ) -> None:
        self._transaction(
            lambda db: db.execute(
                "UPDATE parked SET state = 'parked', reason = ?, attempts = ?, request = ?,"
                " response = ? WHERE id = ?",
                (reason, attempts, request, response, parked_id),
            )
        )

    def delivery_counters(self) -> dict[tuple[str, str], int]:
        with self._lock:
            rows = self._db.execute("SELECT destination, name, value FROM delivery_counters")
            return {(d, n): int(v) for d, n, v in rows.fetchall()}

    def latency_histogram(self, destination: str) -> dict[int, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT bucket_ms, count FROM delivery_latency WHERE destination = ?",
                (destination,),
            ).fetchall()
        return {int(b): int(c) for b, c in rows}

    def delivery_timeline(
        self, destination: str, since_ms: int
    ) -> list[tuple[int, dict[str, int]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT minute, delivered, filtered, parked, retrying FROM delivery_timeline"
                " WHERE destination = ? AND minute >= ? ORDER BY minute",
                (destination, minute_of(since_ms)),
            ).fetchall()
        return timeline_buckets(rows)

    def delivery_step_for(self, destination: str, seq: int) -> tuple[int, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT first_seq, finished_at, attempts FROM delivery_steps"
                " WHERE destination = ? AND last_seq >= ? ORDER BY last_seq LIMIT 1",
                (destination, seq),
            ).fetchone()
        if row is None or row[0] > seq:
            return None
        return int(row[1]), int(row[2])

    def find_events(self, message_id: str) -> list[StoredEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, source_id, message_id, type, event, received_at, payload"
                " FROM events WHERE message_id = ? ORDER BY seq",
                (message_id,),
            ).fetchall()
        return [StoredEvent(*r) for r in rows]
