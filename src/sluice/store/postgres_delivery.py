"""Delivery state in the PostgreSQL store, with the SQLite store's semantics.

A consumer step (read events, deliver them, advance the cursor) commits in one transaction: the
new cursor, the log range it covered, parked events, counters, the latency histogram and, last,
one upsert of the minute's timeline bucket. Counter and histogram upserts are sorted by key so
that two nodes' steps lock rows in the same order and cannot deadlock; the timeline row comes
after them in every transaction that takes it. Parked events are never
deleted by Sluice: an operator's resend marks them `resent`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from sluice.store.base_delivery import DeliveryCommit, ParkedEvent
from sluice.store.base_event_store import StoredEvent
from sluice.store.common import (
    TimelinePruning,
    latency_counts,
    minute_of,
    timeline_buckets,
    timeline_step,
)
from sluice.store.dialect import POSTGRES, Cursor
from sluice.store.postgres_connection import PostgresConnections
from sluice.store.retry_set import RetrySetState
from sluice.store.retry_set_operators import RetrySetOperations

_PARKED_COLUMNS = (
    "id, destination, message_id, seq, parked_at, reason, attempts, request, response, payload,"
    " state"
)
UPSERT_CURSOR_SQL = (
    "INSERT INTO cursors (consumer, seq) VALUES (%s, %s)"
    " ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq"
)


class PostgresDeliveryState(PostgresConnections, RetrySetState, RetrySetOperations):
    """Mixed into `PostgresStore`."""

    _dialect = POSTGRES

    _timeline_pruning: TimelinePruning

    def commit_delivery(self, commit: DeliveryCommit) -> None:
        dest = commit.destination
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            if commit.cursor is not None:
                cur.execute(UPSERT_CURSOR_SQL, (commit.consumer, commit.cursor))
            if commit.last_seq >= commit.first_seq > 0:
                cur.execute(
                    "INSERT INTO delivery_steps VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (destination, last_seq) DO UPDATE SET"
                    " first_seq = excluded.first_seq, finished_at = excluded.finished_at,"
                    " attempts = excluded.attempts",
                    (dest, commit.first_seq, commit.last_seq, commit.finished_at_ms,
                     commit.attempts),
                )  # fmt: skip
            if commit.parked:
                cur.executemany(
                    "INSERT INTO parked (destination, message_id, seq, parked_at, reason, attempts,"
                    " request, response, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (dest, p.message_id, p.seq, commit.finished_at_ms, p.reason, p.attempts,
                         p.request, p.response, p.payload)
                        for p in commit.parked
                    ],
                )  # fmt: skip
            self._write_retry_changes(cur, commit)
            if commit.resent_parked_ids:
                cur.execute(
                    "UPDATE parked SET state = 'resent' WHERE id = ANY(%s)",
                    (list(commit.resent_parked_ids),),
                )
            counters = sorted((name, n) for name, n in commit.counters.items() if n)
            if counters:
                cur.executemany(
                    "INSERT INTO delivery_counters VALUES (%s, %s, %s)"
                    " ON CONFLICT (destination, name)"
                    " DO UPDATE SET value = delivery_counters.value + excluded.value",
                    [(dest, name, n) for name, n in counters],
                )
            if commit.latencies_ms:
                cur.executemany(
                    "INSERT INTO delivery_latency VALUES (%s, %s, %s)"
                    " ON CONFLICT (destination, bucket_ms)"
                    " DO UPDATE SET count = delivery_latency.count + excluded.count",
                    [(dest, bound, n) for bound, n in latency_counts(commit.latencies_ms)],
                )
            delivered, filtered, parked = timeline_step(commit.counters)
            if delivered or filtered or parked:
                minute = minute_of(commit.finished_at_ms)
                self._prune_timeline(cur, dest, minute)
                cur.execute(
                    "INSERT INTO delivery_timeline VALUES (%s, %s, %s, %s, %s, 0)"
                    " ON CONFLICT (destination, minute) DO UPDATE SET"
                    " delivered = delivery_timeline.delivered + excluded.delivered,"
                    " filtered = delivery_timeline.filtered + excluded.filtered,"
                    " parked = delivery_timeline.parked + excluded.parked",
                    (dest, minute, delivered, filtered, parked),
                )

    def _prune_timeline(self, cur: psycopg.Cursor[Any], destination: str, minute: int) -> None:
        cutoff = self._timeline_pruning.cutoff(destination, minute)
        if cutoff is not None:
            cur.execute(
                "DELETE FROM delivery_timeline WHERE destination = %s AND minute < %s",
                (destination, cutoff),
            )

    def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return conn.execute(POSTGRES(sql), params).fetchall()

    def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            return fn(cur)

    def parked(
        self,
        destination: str | None = None,
        states: Sequence[str] = ("parked",),
        limit: int = 100,
        *,
        newest_first: bool = False,
    ) -> list[ParkedEvent]:
        where = ["state = ANY(%s)"]
        params: list[Any] = [list(states)]
        if destination is not None:
            where.append("destination = %s")
            params.append(destination)
        params.append(limit)
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_PARKED_COLUMNS} FROM parked WHERE {' AND '.join(where)}"
                f" ORDER BY id{' DESC' if newest_first else ''} LIMIT %s",
                params,
            ).fetchall()
        return [ParkedEvent(*r) for r in rows]

    def parked_counts(self, states: Sequence[str] = ("parked",)) -> dict[str, int]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT destination, count(*) FROM parked WHERE state = ANY(%s)"
                " GROUP BY destination",
                (list(states),),
            ).fetchall()
        return {d: int(n) for d, n in rows}

    def parked_for_message(self, message_id: str) -> list[ParkedEvent]:
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_PARKED_COLUMNS} FROM parked WHERE message_id = %s ORDER BY id",
                (message_id,),
            ).fetchall()
        return [ParkedEvent(*r) for r in rows]

    def request_parked_retry(self, destination: str | None, ids: Sequence[int] = ()) -> int:
        query = "UPDATE parked SET state = 'retry_requested' WHERE state = 'parked'"
        params: list[Any] = []
        if destination is not None:
            query += " AND destination = %s"
            params.append(destination)
        if ids:
            query += " AND id = ANY(%s)"
            params.append(list(ids))
        with self._connection() as conn:
            return conn.execute(query, params).rowcount

    def repark(
        self, parked_id: int, reason: str, attempts: int, request: bytes, response: bytes
    ) -> None:
        with self._connection() as conn:
            conn.execute(
                "UPDATE parked SET state = 'parked', reason = %s, attempts = %s, request = %s,"
                " response = %s WHERE id = %s",
                (reason, attempts, request, response, parked_id),
            )

    def delivery_counters(self) -> dict[tuple[str, str], int]:
        with self._connection() as conn:
            rows = conn.execute("SELECT destination, name, value FROM delivery_counters")
            return {(d, n): int(v) for d, n, v in rows.fetchall()}

    def latency_histogram(self, destination: str) -> dict[int, int]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT bucket_ms, count FROM delivery_latency WHERE destination = %s",
                (destination,),
            ).fetchall()
        return {int(b): int(c) for b, c in rows}

    def delivery_timeline(
        self, destination: str, since_ms: int
    ) -> list[tuple[int, dict[str, int]]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT minute, delivered, filtered, parked, retrying FROM delivery_timeline"
                " WHERE destination = %s AND minute >= %s ORDER BY minute",
                (destination, minute_of(since_ms)),
            ).fetchall()
        return timeline_buckets(rows)

    def delivery_step_for(self, destination: str, seq: int) -> tuple[int, int] | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT first_seq, finished_at, attempts FROM delivery_steps"
                " WHERE destination = %s AND last_seq >= %s ORDER BY last_seq LIMIT 1",
                (destination, seq),
            ).fetchone()
        if row is None or row[0] > seq:
            return None
        return int(row[1]), int(row[2])

    def find_events(self, message_id: str) -> list[StoredEvent]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT seq, source_id, message_id, type, event, received_at, payload"
                " FROM events WHERE message_id = %s ORDER BY seq",
                (message_id,),
            ).fetchall()
        return [StoredEvent(*r) for r in rows]
