"""The retry set and consumer states: one set of SQL for both backends.

A delivery that fails with a retryable answer does not hold the destination's cursor: the event
moves to the destination's retry set (a row per event and action, with its body, so the log's
retention never matters to it) and is tried again when its backoff is over, next to new events.
Rows are written in the same transaction as the rest of a consumer's commit (`DeliveryCommit`):
the failure is recorded the moment it happens, and a crash never forgets one.

States of a row: `retrying` (due at `next_attempt`), `waiting` (with `ordering: per_user`: an
earlier event of the same user is retrying; it becomes `retrying` when that one is settled) and
`delivered` (kept a week so that `sluice trace` can say when and after how many attempts).

The SQL is written once, with `?` placeholders; the PostgreSQL store turns them into `%s`
(`Dialect`). Everything else (upserts, correlated subqueries, `%`) reads the same in both.

Here: what a consumer's step writes to the set and reads of it, and consumer states. The tables
are in retry_set_schema.py, what operators read and do in retry_set_operators.py, the
placeholders' `Dialect` in dialect.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.base_delivery import MINUTE_MS, DeliveryCommit, NewParked, RetryRow
from sluice.store.dialect import Cursor, Dialect

DELIVERED_KEEP_MS = 7 * 24 * 3600 * 1000  # as long as the delivery timeline
RETRY_ROW_COLUMNS = (
    "destination, seq, action, message_id, source_id, type, event, received_at, window_start,"
    " user_hash, state, attempts, first_failure, next_attempt, updated_at, last_error, request,"
    " response, payload"
)
_INSERT = (
    f"INSERT INTO retry_set ({RETRY_ROW_COLUMNS}) VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (destination, seq, action) DO UPDATE SET state = excluded.state,"
    " attempts = retry_set.attempts + excluded.attempts, next_attempt = excluded.next_attempt,"
    " window_start = excluded.window_start, updated_at = excluded.updated_at,"
    " last_error = excluded.last_error, request = excluded.request,"
    " response = excluded.response, payload = excluded.payload"
)
_RESCHEDULE = (
    "UPDATE retry_set SET attempts = ?, next_attempt = ?, updated_at = ?, last_error = ?,"
    " request = ?, response = ? WHERE destination = ? AND seq = ? AND action = ?"
    " AND state = 'retrying'"
)
_DELIVERED = (
    "UPDATE retry_set SET state = 'delivered', attempts = ?, updated_at = ?, next_attempt = 0,"
    " payload = ? WHERE destination = ? AND seq = ? AND action = ?"
)
DELETE_RETRY_ROW_SQL = "DELETE FROM retry_set WHERE destination = ? AND seq = ? AND action = ?"
# With `ordering: per_user`: a user whose retrying events are all settled gets its oldest waiting
# event (every action of it) made due now.
PROMOTE_WAITING_SQL = (
    "UPDATE retry_set SET state = 'retrying', next_attempt = ? WHERE destination = ?"
    " AND state = 'waiting' AND NOT EXISTS (SELECT 1 FROM retry_set o"
    " WHERE o.destination = retry_set.destination AND o.user_hash = retry_set.user_hash"
    " AND o.state = 'retrying') AND seq = (SELECT min(w.seq) FROM retry_set w"
    " WHERE w.destination = retry_set.destination AND w.user_hash = retry_set.user_hash"
    " AND w.state = 'waiting')"
)


def retry_row(r: Sequence[Any]) -> RetryRow:
    return RetryRow(
        str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], int(r[7]),
        int(r[8]), int(r[9]), str(r[10]), int(r[11]), int(r[12]), int(r[13]), int(r[14]),
        str(r[15]), bytes(r[16]), bytes(r[17]), bytes(r[18]),
    )  # fmt: skip


class RetrySetState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect`."""

    _dialect: Dialect
    _delivered_pruning: DeliveredPruning

    if TYPE_CHECKING:  # the store's own, earlier in its MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

    def _write_retry_changes(self, cur: Cursor, commit: DeliveryCommit) -> None:
        """The retry-set part of a consumer's commit, inside the backend's transaction."""
        q = self._dialect
        dest = commit.destination
        now = commit.finished_at_ms
        if commit.retries:
            cur.executemany(
                q(_INSERT),
                [
                    (dest, r.seq, r.action, r.message_id, r.source_id, r.type, r.event,
                     r.received_at_ms, r.window_start_ms, r.user_hash, r.state, r.attempts,
                     r.first_failure_ms, r.next_attempt_ms, now, r.last_error, r.request,
                     r.response, r.payload)
                    for r in commit.retries
                ],
            )  # fmt: skip
        if commit.retries_rescheduled:
            cur.executemany(
                q(_RESCHEDULE),
                [
                    (r.attempts, r.next_attempt_ms, now, r.last_error, r.request, r.response, dest,
                     r.seq, r.action)
                    for r in commit.retries_rescheduled
                ],
            )  # fmt: skip
        if commit.retries_delivered:
            cur.executemany(
                q(_DELIVERED),
                [(r.attempts, now, b"", dest, r.seq, r.action) for r in commit.retries_delivered],
            )
        if commit.retries_dropped:
            cur.executemany(
                q(DELETE_RETRY_ROW_SQL), [(dest, k.seq, k.action) for k in commit.retries_dropped]
            )
        if commit.retries_delivered or commit.retries_dropped:
            cur.execute(q(PROMOTE_WAITING_SQL), (now, dest))
        touched = commit.retries_delivered or commit.retries_dropped or commit.retries
        cutoff = self._delivered_pruning.cutoff(dest, now) if touched else None
        if cutoff is not None:
            cur.execute(
                q("DELETE FROM retry_set WHERE destination = ? AND state = 'delivered'"
                  " AND updated_at < ?"),
                (dest, cutoff),
            )  # fmt: skip
        if commit.retrying_now is not None:
            minute = now // MINUTE_MS * MINUTE_MS
            cur.execute(
                q("INSERT INTO delivery_timeline VALUES (?, ?, 0, 0, 0, ?)"
                  " ON CONFLICT (destination, minute) DO UPDATE SET retrying = CASE WHEN"
                  " excluded.retrying > delivery_timeline.retrying THEN excluded.retrying"
                  " ELSE delivery_timeline.retrying END"),
                (dest, minute, commit.retrying_now),
            )  # fmt: skip

    def _park_rows(self, cur: Cursor, destination: str, parked: Sequence[NewParked],
                   now_ms: int) -> None:  # fmt: skip
        cur.executemany(
            self._dialect(
                "INSERT INTO parked (destination, message_id, seq, parked_at, reason, attempts,"
                " request, response, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                (destination, p.message_id, p.seq, now_ms, p.reason, p.attempts, p.request,
                 p.response, p.payload)
                for p in parked
            ],
        )  # fmt: skip

    # --- what the consumer reads ---------------------------------------------------------------
    def due_retries(
        self,
        destination: str,
        now_ms: int,
        limit: int,
        partition: tuple[int, int] | None = None,
    ) -> list[RetryRow]:
        """Rows whose next attempt is due, soonest first (a partition's users only)."""
        sql = (
            f"SELECT {RETRY_ROW_COLUMNS} FROM retry_set WHERE destination = ?"
            " AND state = 'retrying' AND next_attempt <= ?"
        )
        params: list[Any] = [destination, now_ms]
        if partition is not None:
            sql += " AND user_hash % ? = ?"
            params += [partition[1], partition[0]]
        rows = self._retry_read(sql + " ORDER BY next_attempt, seq LIMIT ?", [*params, limit])
        return [retry_row(r) for r in rows]

    def next_retry_at(self, destination: str) -> int | None:
        """When the destination's soonest retrying row is due (epoch ms), None if it has none."""
        rows = self._retry_read(
            "SELECT min(next_attempt) FROM retry_set WHERE destination = ? AND state = 'retrying'",
            (destination,),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def retry_users(
        self, destination: str, partition: tuple[int, int] | None = None
    ) -> dict[int, int]:
        """Active rows per user hash (ordering: per_user holds these users' new events back)."""
        sql = (
            "SELECT user_hash, count(*) FROM retry_set WHERE destination = ?"
            " AND state IN ('retrying', 'waiting')"
        )
        params: list[Any] = [destination]
        if partition is not None:
            sql += " AND user_hash % ? = ?"
            params += [partition[1], partition[0]]
        return {int(h): int(n) for h, n in self._retry_read(sql + " GROUP BY user_hash", params)}

    def failed_seqs_after(self, destination: str, seq: int) -> set[int]:
        """Log positions past `seq` the destination already has a retry-set or parked row for:
        a consumer that restarts behind them must not send them again as new events."""
        rows = self._retry_read(
            "SELECT seq FROM retry_set WHERE destination = ? AND seq > ?"
            " UNION SELECT seq FROM parked WHERE destination = ? AND seq > ?",
            (destination, seq, destination, seq),
        )
        return {int(r[0]) for r in rows}

    # --- consumer states -----------------------------------------------------------------------
    def set_consumer_state(self, consumer: str, state: str, detail: str, since_ms: int) -> None:
        """What a consumer is doing now (`running`, or `paused` and why), written on change."""
        sql = self._dialect(
            "INSERT INTO consumer_states VALUES (?, ?, ?, ?) ON CONFLICT (consumer) DO UPDATE"
            " SET state = excluded.state, detail = excluded.detail, since = excluded.since"
        )
        self._retry_write(lambda cur: cur.execute(sql, (consumer, state, detail, since_ms)))

    def consumer_states(self) -> dict[str, tuple[str, str, int]]:
        rows = self._retry_read("SELECT consumer, state, detail, since FROM consumer_states")
        return {str(c): (str(s), str(d), int(t)) for c, s, d, t in rows}


class DeliveredPruning:
    """When to drop a destination's delivered rows older than a week: once a minute per
    destination and process (the delete is an index range), not with every commit."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def cutoff(self, destination: str, now_ms: int) -> int | None:
        with self._lock:
            if now_ms - self._last.get(destination, 0) < 60_000:
                return None
            self._last[destination] = now_ms
        return now_ms - DELIVERED_KEEP_MS


__all__ = [
    "DeliveredPruning",
    "RetrySetState",
]
