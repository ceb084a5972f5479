"""The shared store: the event log, control plane and counters in one PostgreSQL database.

Many stateless nodes use one database: collectors append, workers consume. What SQLite gets from
having a single writer has to be built here, and this module is where it is:

Deduplication is done by the database, exactly across nodes: `seen_ids` holds each messageId of
the window with its time. An append upserts the group's ids (`ON CONFLICT DO UPDATE ... WHERE the
stored time is older than the window`); `RETURNING` gives exactly the ids that are new, and only
their events are written. A concurrent append of the same id on another node waits on that row
and then sees it. Ids are sorted so that two appends lock rows in one order (no deadlocks).

The read horizon (cursor correctness with concurrent writers). Appenders take seqs from one
sequence (`CACHE 1`, so values are handed out in time order) but commit in any order: T1 takes
5, T2 takes 6 and commits, T1 commits later. A consumer that read 6 and moved its cursor past it
would never see 5. So `read_after` returns only rows at or below a horizon H below which every
seq is final:

* An appender, inside its transaction, first reads k = the highest seq handed out so far, then
  takes a shared transaction-level advisory lock on `HORIZON_LOCK_BASE + k`, and only then
  allocates its seqs (all > k) and inserts. PostgreSQL drops the lock at commit or abort, and
  when the session dies.
* A reader first reads L = the highest seq handed out so far, then m = the smallest k among those
  locks in `pg_locks` (this database, Sluice's key range); H = min(L, m), or L when there is no
  such lock (function `sluice_log_horizon()`). Then, in a later statement and so with a newer
  snapshot, it reads the rows with cursor < seq <= H.

Why no event with seq s <= H can appear after that read: s <= H <= L, so s was handed out before
the reader read L, and its appender had locked k < s before that. Had the appender still been
running when the reader read `pg_locks`, its lock would give m <= k < s, so H < s: it was not.
So it had committed, and PostgreSQL releases locks only after a commit is visible to new
snapshots, so the row read sees s; or it had aborted, and s never appears. An appender that
locks after the reader read `pg_locks` allocates after the reader read L, so its seqs are > L >= H.

Conditions this relies on: the sequence's cache is 1 (a cached block would hand out old values
late); readers talk to the primary (a standby's `pg_locks` does not show the primary's
appenders); the lock is shared, so appenders never wait for each other on it. The price: a slow
appender holds back every consumer until it ends, which is why pool sessions have an
`idle_in_transaction_session_timeout`. The row read and the horizon must be separate statements:
in one statement the snapshot would be older than the `pg_locks` read.

Retention and partitions: see postgres_schema.py and postgres_leases.py. A background thread of
an appending store keeps a partition ahead of the log and deletes expired `seen_ids`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import errors

from sluice.store.base_event_store import (
    AppendBatch,
    AppendResult,
    ConfigObject,
    EventQuery,
    NewEvent,
    Rejection,
    SourceRow,
    StoredEvent,
    StoredRejection,
    stored_event,
)
from sluice.store.common import TimelinePruning, count_stored, source_rows
from sluice.store.oauth_tokens import OAuthTokensState
from sluice.store.postgres_connection import (
    DEFAULT_POOL_SIZE,
    connect,
    open_pool,
)
from sluice.store.postgres_delivery import UPSERT_CURSOR_SQL, PostgresDeliveryState
from sluice.store.postgres_leases import PostgresLeases
from sluice.store.postgres_maintenance import Maintenance, sweep_expired_ids
from sluice.store.postgres_schema import (
    DEFAULT_PARTITION_SPAN,
    HORIZON_LOCK_BASE,
    ensure_partitions,
    handed_out,
    migrate,
)
from sluice.store.processes import ProcessReportsState
from sluice.store.regulations import RegulationsState
from sluice.store.retry_set import DeliveredPruning
from sluice.store.unit_stats import UnitStatsState

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
_EVENT_COLUMNS = "seq, source_id, message_id, type, event, received_at, payload"


class PostgresStore(
    PostgresDeliveryState,
    PostgresLeases,
    ProcessReportsState,
    UnitStatsState,
    OAuthTokensState,
    RegulationsState,
):
    """`Store` on a PostgreSQL database shared by many nodes; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        dedupe_window_s: int = 24 * 3600,
        keep_rejections: int = 10_000,
        pool_size: int = DEFAULT_POOL_SIZE,
        partition_span: int = DEFAULT_PARTITION_SPAN,
    ) -> None:
        super().__init__(url, pool_size)
        self._window_ms = int(dedupe_window_s) * 1000
        self._keep_rejections = keep_rejections
        with connect(url, self.address) as conn:
            self._span = migrate(conn, partition_span)
            # A lower bound of the log's end, moved on by this store's appends.
            self._log_end = handed_out(conn)
            self._partitions_end = ensure_partitions(conn, self._log_end + self._span, self._span)
        self._pool = open_pool(url, self.address, pool_size)
        self._append_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        # Counters ride along with appends but are written at most every COUNTER_FLUSH_S (as in
        # the SQLite store): the upsert locks rows every node's appends share.
        self._unflushed: dict[tuple[str, str], int] = {}
        self._counters_flushed = 0.0
        self._maintenance: Maintenance | None = None
        self._timeline_pruning = TimelinePruning()
        self._delivered_pruning = DeliveredPruning()

    # --- event log -------------------------------------------------------------------------
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

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        with self._connection() as conn:
            horizon = self._horizon(conn)
            if horizon <= seq:
                return []
            # A new statement, so a snapshot taken after the horizon was (see the docstring).
            with conn.cursor(binary=True) as cur:
                rows = cur.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE seq > %s AND seq <= %s"
                    " ORDER BY seq LIMIT %s",
                    (seq, horizon, limit),
                ).fetchall()
        return list(map(stored_event, rows))

    def newest(self, query: EventQuery) -> list[StoredEvent]:
        where = ["seq > %s", "seq <= %s"]
        params: list[Any] = [query.after_seq]
        for column, value in (
            ("source_id", query.source_id),
            ("type", query.type),
            ("event", query.event),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        with self._connection() as conn:
            # Held to the horizon too: `sluice events --follow` reads on from the newest seq.
            params.insert(1, self._horizon(conn))
            params.append(query.limit)
            with conn.cursor(binary=True) as cur:
                rows = cur.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)}"
                    " ORDER BY seq DESC LIMIT %s",
                    params,
                ).fetchall()
        return list(map(stored_event, rows))

    def rejections(self, limit: int, source_id: str | None = None) -> list[StoredRejection]:
        query = "SELECT id, source_id, reason, detail, received_at, payload FROM rejections"
        params: list[Any] = []
        if source_id is not None:
            query += " WHERE source_id = %s"
            params.append(source_id)
        query += " ORDER BY id DESC LIMIT %s"
        params.append(limit)
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [StoredRejection(*r) for r in rows]

    def last_seq(self) -> int:
        """The newest final event's seq: a consumer starting there misses nothing in flight."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT max(seq) FROM events WHERE seq <= (SELECT sluice_log_horizon())"
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # --- cursors ---------------------------------------------------------------------------
    def get_cursor(self, consumer: str) -> int:
        found = self.find_cursor(consumer)
        return 0 if found is None else found

    def find_cursor(self, consumer: str) -> int | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT seq FROM cursors WHERE consumer = %s", (consumer,)
            ).fetchone()
        return int(row[0]) if row else None

    def commit_cursor(self, consumer: str, seq: int) -> None:
        with self._connection() as conn:
            conn.execute(UPSERT_CURSOR_SQL, (consumer, seq))

    # --- counters --------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str], int]:
        with self._connection() as conn:
            rows = conn.execute("SELECT source_id, name, value FROM counters").fetchall()
        result = {(s, n): int(v) for s, n, v in rows}
        with self._counter_lock:
            for key, n in self._unflushed.items():
                result[key] = result.get(key, 0) + n
        return result

    # --- control plane ---------------------------------------------------------------------
    def config_version(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'config_version'").fetchone()
        return int(row[0]) if row else 0

    def schema_versions(self, timeout_s: float) -> list[int]:
        """The migrations applied to the database, read within about `timeout_s` (the wait for a
        pooled connection, then a statement timeout): readiness probes (collector/health.py)
        must answer while the database does not."""
        with self._connection(timeout_s) as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {max(int(timeout_s * 1000), 1)}")
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [int(v) for (v,) in rows]

    def list_config(self, kind: str | None = None) -> list[ConfigObject]:
        query = "SELECT kind, id, body FROM config"
        params: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = %s"
            params = (kind,)
        with self._connection() as conn:
            rows = conn.execute(query + " ORDER BY kind, id", params).fetchall()
        return [ConfigObject(k, i, bytes(b)) for k, i, b in rows]

    def replace_config(self, objects: Iterable[ConfigObject]) -> None:
        self._write_config([(o.kind, o.id, o.body) for o in objects], replace=True)

    def put_config(self, obj: ConfigObject) -> None:
        self._write_config([(obj.kind, obj.id, obj.body)], replace=False)

    def _write_config(self, rows: list[tuple[str, str, bytes]], replace: bool) -> None:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            # The version row first: concurrent writers of the workspace queue on it.
            cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'config_version'")
            if replace:
                cur.execute("DELETE FROM config")
            cur.executemany(
                "INSERT INTO config (kind, id, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                rows,
            )

    def sources(self) -> Sequence[SourceRow]:
        return source_rows(self.list_config("source"))

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._pool is None:
            return
        try:
            if self._unflushed:
                self.append(AppendBatch())
        finally:
            if self._maintenance is not None:
                self._maintenance.stop()
            self._pool.close()
            self._pool = None
