"""The PostgreSQL store's append path: a group's events deduplicated by the database and written
by COPY under the appender's side of the read horizon, with rejections and counters, in one
transaction; partitions made ahead of the log and expired ids swept by a maintenance thread.

Why it is built this way (deduplication exact across nodes, the horizon's advisory locks) is the
argument of postgres.py's docstring. The append side is a module of its own, apart from the
store's reads, cursors and control plane. Mixed into `PostgresStore`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg import errors

from sluice.store.base_event_store import AppendBatch, AppendResult, NewEvent, Rejection
from sluice.store.common import count_stored
from sluice.store.postgres_connection import PostgresConnections
from sluice.store.postgres_maintenance import Maintenance, sweep_expired_ids
from sluice.store.postgres_schema import HORIZON_LOCK_BASE, ensure_partitions, handed_out

COUNTER_FLUSH_S = 0.25
MAX_APPEND_ATTEMPTS = 3

# The appender's first statement: read k, then lock BASE + k (parameter: HORIZON_LOCK_BASE).
APPEND_LOCK_SQL = (
    "SELECT k, pg_advisory_xact_lock_shared(%s + k) FROM (SELECT CASE WHEN is_called"
    " THEN last_value ELSE last_value - 1 END AS k FROM events_seq) AS handed_out"
)
_DEDUPE_SQL = (
    "INSERT INTO seen_ids (message_id, received_at)"
    " SELECT * FROM unnest(%b::text[], %b::bigint[])"
    " ON CONFLICT (message_id) DO UPDATE SET received_at = excluded.received_at"
    " WHERE seen_ids.received_at < excluded.received_at - %s RETURNING message_id"
)
# Measured faster than executemany in pipeline mode and than INSERT ... SELECT unnest (bench/).
_COPY_EVENTS_SQL = (
    "COPY events (source_id, message_id, type, event, received_at, payload)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["text", "text", "text", "text", "int8", "bytea"]


class PostgresAppends(PostgresConnections):
    """Mixed into `PostgresStore`: uses the dedupe window, the partitions' span and ends, and
    the counters held back between appends, which the store sets up."""

    _window_ms: int
    _keep_rejections: int
    _span: int
    _log_end: int
    _partitions_end: int
    _append_lock: threading.Lock
    _counter_lock: threading.Lock
    _unflushed: dict[tuple[str, str], int]
    _counters_flushed: float
    _maintenance: Maintenance | None

    def warm_up(self) -> None:
        return None  # the dedupe window lives in `seen_ids`, nothing to load

    def append(self, batch: AppendBatch) -> AppendResult:
        with self._append_lock:
            with self._counter_lock:
                held = dict(self._unflushed)
            if not batch.events and not batch.rejections and not held and not batch.counters:
                return AppendResult(stored=0, duplicates=0)
            if self._maintenance is None:
                self._maintenance = Maintenance(self._extend_partitions, self.sweep_expired_ids)
            if self._log_end + len(batch.events) >= self._partitions_end:
                # The maintenance thread fell behind (or the groups are huge): catch up first.
                self._extend_partitions(len(batch.events))
            for attempt in range(1, MAX_APPEND_ATTEMPTS + 1):
                try:
                    rows, counters, flushed = self._write(batch, held)
                    break
                except (errors.DeadlockDetected, errors.SerializationFailure):
                    if attempt == MAX_APPEND_ATTEMPTS:
                        raise
                except errors.CheckViolation as exc:
                    # Other nodes' appends outran the partitions made ahead: make more, again.
                    if attempt == MAX_APPEND_ATTEMPTS or "no partition" not in str(exc):
                        raise
                    self._extend_partitions(len(batch.events))
            with self._counter_lock:
                if flushed:
                    self._unflushed = {}
                    self._counters_flushed = time.monotonic()
                else:
                    self._unflushed = counters
        if self._log_end + self._span >= self._partitions_end:
            self._maintenance.wake()
        return AppendResult(stored=len(rows), duplicates=len(batch.events) - len(rows))

    def _write(
        self, batch: AppendBatch, held: dict[tuple[str, str], int]
    ) -> tuple[list[NewEvent], dict[tuple[str, str], int], bool]:
        """One append transaction; returns the events written, the counters and whether they
        were written too."""
        counters = dict(held)
        for key, n in batch.counters.items():
            counters[key] = counters.get(key, 0) + n
        rows: list[NewEvent] = []
        with self._connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            if batch.events:
                lock = cur.execute(APPEND_LOCK_SQL, (HORIZON_LOCK_BASE,)).fetchone()
                assert lock is not None
                rows = self._new_events(cur, batch.events)
                count_stored(counters, batch.events, rows)
                if rows:
                    with cur.copy(_COPY_EVENTS_SQL) as copy:
                        copy.set_types(_COPY_TYPES)
                        for row in rows:
                            copy.write_row(row)
                self._log_end = int(lock[0]) + len(rows)
            if batch.rejections:
                self._insert_rejections(cur, batch.rejections)
            flush = bool(counters) and (
                not rows or time.monotonic() - self._counters_flushed >= COUNTER_FLUSH_S
            )
            if flush:
                keys = sorted(counters)  # one lock order for every node's appends
                cur.execute(
                    "INSERT INTO counters (source_id, name, value)"
                    " SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[])"
                    " ON CONFLICT (source_id, name)"
                    " DO UPDATE SET value = counters.value + excluded.value",
                    ([s for s, _ in keys], [n for _, n in keys], [counters[k] for k in keys]),
                )
        return rows, counters, flush

    def _new_events(self, cur: psycopg.Cursor[Any], events: list[NewEvent]) -> list[NewEvent]:
        """The events whose messageId the window has not seen, in the group's order.

        A messageId repeated inside one group counts as a duplicate of its first occurrence
        (a group spans milliseconds, far less than any window).
        """
        first: dict[str, NewEvent] = {}
        for e in events:
            first.setdefault(e.message_id, e)
        ids = sorted(first)
        cur.execute(_DEDUPE_SQL, (ids, [first[i].received_at_ms for i in ids], self._window_ms))
        new = {message_id for (message_id,) in cur.fetchall()}
        return [e for e in first.values() if e.message_id in new]

    def _insert_rejections(self, cur: psycopg.Cursor[Any], rejections: list[Rejection]) -> None:
        row = cur.execute(
            "WITH added AS (INSERT INTO rejections (source_id, reason, detail, received_at,"
            " payload) SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bigint[],"
            " %b::bytea[]) RETURNING id) SELECT max(id), count(*) FROM added",
            (
                [r.source_id for r in rejections],
                [r.reason for r in rejections],
                [r.detail for r in rejections],
                [r.received_at_ms for r in rejections],
                [r.payload for r in rejections],
            ),
        ).fetchone()
        assert row is not None
        last, added = int(row[0]), int(row[1])
        # Trim about every hundred ids, as the SQLite store does.
        if last % 100 < added and last > self._keep_rejections:
            cur.execute("DELETE FROM rejections WHERE id <= %s", (last - self._keep_rejections,))

    def _extend_partitions(self, pending: int = 0) -> None:
        """Make partitions reach a full span past the log's end (plus `pending` seqs)."""
        with self._connection() as conn:
            cover_to = handed_out(conn) + pending + self._span
            if cover_to >= self._partitions_end:
                self._partitions_end = ensure_partitions(conn, cover_to, self._span)

    def sweep_expired_ids(self, stopping: threading.Event | None = None) -> int:
        """Delete ids past the window (plus a margin), in slices; returns how many.

        The maintenance thread runs this every minute; one node at a time does the work.
        """
        with self._connection() as conn:
            return sweep_expired_ids(conn, self._window_ms, stopping or threading.Event())
