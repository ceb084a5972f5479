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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sluice.store.base_delivery import MINUTE_MS, DeliveryCommit, NewParked, RetryingEvent, RetryRow

RETRY_SET_TABLE_SQLITE = """
CREATE TABLE IF NOT EXISTS retry_set (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    message_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    type TEXT NOT NULL,
    event TEXT,
    received_at INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    user_hash INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failure INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (destination, seq, action)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retry_set_due ON retry_set (destination, state, next_attempt);
CREATE INDEX IF NOT EXISTS retry_set_by_user ON retry_set (destination, user_hash, seq);
CREATE INDEX IF NOT EXISTS retry_set_by_message ON retry_set (message_id);
CREATE TABLE IF NOT EXISTS consumer_states (
    consumer TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    since INTEGER NOT NULL
) WITHOUT ROWID;
DROP TABLE IF EXISTS retrying;
"""

RETRY_SET_TABLE_POSTGRES = """
CREATE TABLE IF NOT EXISTS retry_set (
    destination text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    action text COLLATE "C" NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    source_id text NOT NULL,
    type text NOT NULL,
    event text,
    received_at bigint NOT NULL,
    window_start bigint NOT NULL,
    user_hash bigint NOT NULL,
    state text COLLATE "C" NOT NULL,
    attempts integer NOT NULL,
    first_failure bigint NOT NULL,
    next_attempt bigint NOT NULL,
    updated_at bigint NOT NULL,
    last_error text NOT NULL,
    request bytea NOT NULL,
    response bytea NOT NULL,
    payload bytea NOT NULL,
    PRIMARY KEY (destination, seq, action)
);
CREATE INDEX IF NOT EXISTS retry_set_due ON retry_set (destination, state, next_attempt);
CREATE INDEX IF NOT EXISTS retry_set_by_user ON retry_set (destination, user_hash, seq);
CREATE INDEX IF NOT EXISTS retry_set_by_message ON retry_set (message_id);
CREATE TABLE IF NOT EXISTS consumer_states (
    consumer text COLLATE "C" PRIMARY KEY,
    state text NOT NULL,
    detail text NOT NULL,
    since bigint NOT NULL
);
DROP TABLE IF EXISTS retrying;
"""

ACTIVE = ("retrying", "waiting")
DELIVERED_KEEP_MS = 7 * 24 * 3600 * 1000  # as long as the delivery timeline
_ROW_COLUMNS = (
    "destination, seq, action, message_id, source_id, type, event, received_at, window_start,"
    " user_hash, state, attempts, first_failure, next_attempt, updated_at, last_error, request,"
    " response, payload"
)
_VIEW_COLUMNS = (
    "destination, message_id, seq, first_failure, attempts, next_attempt, last_error, action,"
    " state, request, response, updated_at"
)
_INSERT = (
    f"INSERT INTO retry_set ({_ROW_COLUMNS}) VALUES"
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
_DELETE = "DELETE FROM retry_set WHERE destination = ? AND seq = ? AND action = ?"
# With `ordering: per_user`: a user whose retrying events are all settled gets its oldest waiting
# event (every action of it) made due now.
_PROMOTE = (
    "UPDATE retry_set SET state = 'retrying', next_attempt = ? WHERE destination = ?"
    " AND state = 'waiting' AND NOT EXISTS (SELECT 1 FROM retry_set o"
    " WHERE o.destination = retry_set.destination AND o.user_hash = retry_set.user_hash"
    " AND o.state = 'retrying') AND seq = (SELECT min(w.seq) FROM retry_set w"
    " WHERE w.destination = retry_set.destination AND w.user_hash = retry_set.user_hash"
    " AND w.state = 'waiting')"
)


class Cursor(Protocol):
    """What both drivers' cursors (sqlite3's connection, psycopg's cursor) offer alike."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...

    def executemany(self, sql: Any, params: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a backend writes a placeholder; the retry set's SQL is written with `?`."""

    placeholder: str

    def __call__(self, sql: str) -> str:
        if self.placeholder == "?":
            return sql
        return sql.replace("%", "%%").replace("?", self.placeholder)  # `%` is psycopg's marker


SQLITE = Dialect("?")
POSTGRES = Dialect("%s")


def _row(r: Sequence[Any]) -> RetryRow:
    return RetryRow(
        str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], int(r[7]),
        int(r[8]), int(r[9]), str(r[10]), int(r[11]), int(r[12]), int(r[13]), int(r[14]),
        str(r[15]), bytes(r[16]), bytes(r[17]), bytes(r[18]),
    )  # fmt: skip


def _view(r: Sequence[Any]) -> tuple[str, RetryingEvent]:
    return str(r[0]), RetryingEvent(
        str(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), str(r[6]), str(r[7]), str(r[8]),
        bytes(r[9]), bytes(r[10]), int(r[11]),
    )  # fmt: skip


def _where(destination: str | None, message_ids: Sequence[str]) -> tuple[str, list[Any]]:
    sql, params = "", []
    if destination is not None:
        sql += " AND destination = ?"
        params.append(destination)
    if message_ids:
        sql += f" AND message_id IN ({', '.join('?' for _ in message_ids)})"
        params.extend(message_ids)
    return sql, params


class RetrySetState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect`."""

    _dialect: Dialect
    _delivered_pruning: DeliveredPruning

    def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any:
        raise NotImplementedError

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
            cur.executemany(q(_DELETE), [(dest, k.seq, k.action) for k in commit.retries_dropped])
        if commit.retries_delivered or commit.retries_dropped:
            cur.execute(q(_PROMOTE), (now, dest))
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
            f"SELECT {_ROW_COLUMNS} FROM retry_set WHERE destination = ? AND state = 'retrying'"
            " AND next_attempt <= ?"
        )
        params: list[Any] = [destination, now_ms]
        if partition is not None:
            sql += " AND user_hash % ? = ?"
            params += [partition[1], partition[0]]
        rows = self._retry_read(sql + " ORDER BY next_attempt, seq LIMIT ?", [*params, limit])
        return [_row(r) for r in rows]

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

    # --- what operators and `sluice status`/trace read -----------------------------------------
    def retrying(
        self,
        destination: str | None = None,
        limit: int | None = None,
        *,
        states: Sequence[str] = ACTIVE,
    ) -> list[tuple[str, RetryingEvent]]:
        """Retry-set rows (retrying and waiting by default), by destination and log order."""
        where, params = _where(destination, ())
        sql = (
            f"SELECT {_VIEW_COLUMNS} FROM retry_set"
            f" WHERE state IN ({', '.join('?' for _ in states)}){where}"
            " ORDER BY destination, seq, action"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_view(r) for r in self._retry_read(sql, [*states, *params])]

    def retries_for_message(self, message_id: str) -> list[tuple[str, RetryingEvent]]:
        """Every retry-set row of this messageId, delivered ones included (for trace)."""
        rows = self._retry_read(
            f"SELECT {_VIEW_COLUMNS} FROM retry_set WHERE message_id = ? ORDER BY seq, action",
            (message_id,),
        )
        return [_view(r) for r in rows]

    def retry_counts(self, destination: str | None = None) -> dict[str, dict[str, int]]:
        """Rows per destination and state (retrying, waiting), a count per index range."""
        where, params = _where(destination, ())
        rows = self._retry_read(
            "SELECT destination, state, count(*) FROM retry_set"
            f" WHERE state IN ('retrying', 'waiting'){where} GROUP BY destination, state",
            params,
        )
        counts: dict[str, dict[str, int]] = {}
        for dest, state, n in rows:
            counts.setdefault(str(dest), {})[str(state)] = int(n)
        return counts

    def oldest_retrying_seq(self) -> int | None:
        """The lowest log position any retry-set row still needs (log retention keeps it)."""
        rows = self._retry_read(
            "SELECT min(seq) FROM retry_set WHERE state IN ('retrying', 'waiting')"
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def retry_destinations(self) -> list[str]:
        rows = self._retry_read("SELECT DISTINCT destination FROM retry_set")
        return sorted(str(r[0]) for r in rows)

    # --- operator actions ----------------------------------------------------------------------
    def retry_now(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        now_ms: int = 0,
        failed_since_ms: int | None = None,
    ) -> int:
        """Make retrying rows due now (all of the destination's, these events', or those that
        failed since a time: a destination back from an outage); how many."""
        where, params = _where(destination, message_ids)
        if failed_since_ms is not None:
            where += " AND updated_at >= ?"
            params.append(failed_since_ms)
        sql = self._dialect(
            f"UPDATE retry_set SET next_attempt = ? WHERE state = 'retrying'{where}"
        )
        result: int = self._retry_write(lambda cur: cur.execute(sql, [now_ms, *params]).rowcount)
        return result

    def park_retrying(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        reason: str = "parked_by_operator",
        now_ms: int,
    ) -> int:
        """Move retrying and waiting rows to parked now, with their last exchange; how many.

        A request for one of them in flight still settles: if it is delivered, the parked row
        stays (the event is both parked and delivered; `sluice trace` shows parked)."""
        where, params = _where(destination, message_ids)
        q = self._dialect

        def write(cur: Cursor) -> int:
            rows = cur.execute(
                q(f"SELECT {_ROW_COLUMNS} FROM retry_set"
                  f" WHERE state IN ('retrying', 'waiting'){where}"),
                params,
            ).fetchall()  # fmt: skip
            found = [_row(r) for r in rows]
            by_dest: dict[str, list[RetryRow]] = {}
            for row in found:
                by_dest.setdefault(row.destination, []).append(row)
            for dest, own in by_dest.items():
                parked = [
                    NewParked(r.message_id, r.seq, f"{reason}: {r.last_error}", r.attempts,
                              r.request, r.response, r.payload)
                    for r in own
                ]  # fmt: skip
                self._park_rows(cur, dest, _one_per_event(parked), now_ms)
                cur.executemany(q(_DELETE), [(dest, r.seq, r.action) for r in own])
                cur.execute(
                    q("INSERT INTO delivery_counters VALUES (?, ?, ?) ON CONFLICT"
                      " (destination, name) DO UPDATE SET"
                      " value = delivery_counters.value + excluded.value"),
                    (dest, f"parked:{reason}", len({r.seq for r in own})),
                )  # fmt: skip
                cur.execute(q(_PROMOTE), (now_ms, dest))
            return len({(r.destination, r.seq) for r in found})

        result: int = self._retry_write(write)
        return result

    def release_waiting(self, destination: str, *, now_ms: int) -> int:
        """Make every waiting row retrying (the destination's ordering is no longer per user)."""
        sql = self._dialect(
            "UPDATE retry_set SET state = 'retrying', next_attempt = ?"
            " WHERE destination = ? AND state = 'waiting'"
        )
        result: int = self._retry_write(
            lambda cur: cur.execute(sql, (now_ms, destination)).rowcount
        )
        return result

    def drop_retry_set(self, destination: str) -> int:
        """Forget a deleted destination's rows (after its consumer has stopped)."""
        sql = self._dialect("DELETE FROM retry_set WHERE destination = ?")
        result: int = self._retry_write(lambda cur: cur.execute(sql, (destination,)).rowcount)
        return result

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


def _one_per_event(parked: Sequence[NewParked]) -> list[NewParked]:
    """One parked row per event, whatever number of its actions were retrying."""
    seen: set[int] = set()
    kept = []
    for p in parked:
        if p.seq not in seen:
            seen.add(p.seq)
            kept.append(p)
    return kept


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
    "ACTIVE",
    "POSTGRES",
    "RETRY_SET_TABLE_POSTGRES",
    "RETRY_SET_TABLE_SQLITE",
    "SQLITE",
    "DeliveredPruning",
    "Dialect",
    "RetrySetState",
]
