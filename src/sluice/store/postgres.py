"""The shared store: the event log, control plane and counters in one PostgreSQL database.

Many stateless nodes use one database: collectors append, workers consume. What SQLite gets from
having a single writer has to be built here, and this module with postgres_append.py (the
append side) is where it is:

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
from typing import Any

from sluice.store.base_event_store import (
    AppendBatch,
    EventQuery,
    StoredEvent,
    StoredRejection,
    stored_event,
)
from sluice.store.common import TimelinePruning
from sluice.store.oauth_tokens import OAuthTokensState
from sluice.store.postgres_append import PostgresAppends
from sluice.store.postgres_connection import (
    DEFAULT_POOL_SIZE,
    connect,
    open_pool,
)
from sluice.store.postgres_control_plane import PostgresControlPlane
from sluice.store.postgres_delivery import UPSERT_CURSOR_SQL, PostgresDeliveryState
from sluice.store.postgres_leases import PostgresLeases
from sluice.store.postgres_maintenance import Maintenance
from sluice.store.postgres_schema import (
    DEFAULT_PARTITION_SPAN,
    ensure_partitions,
    handed_out,
    migrate,
)
from sluice.store.processes import ProcessReportsState
from sluice.store.regulations import RegulationsState
from sluice.store.retry_set import DeliveredPruning
from sluice.store.unit_stats import UnitStatsState

_EVENT_COLUMNS = "seq, source_id, message_id, type, event, received_at, payload"


class PostgresStore(
    PostgresAppends,
    PostgresControlPlane,
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

    # --- schema ----------------------------------------------------------------------------
    def schema_versions(self, timeout_s: float) -> list[int]:
        """The migrations applied to the database, read within about `timeout_s` (the wait for a
        pooled connection, then a statement timeout): readiness probes (collector/health.py)
        must answer while the database does not."""
        with self._connection(timeout_s) as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {max(int(timeout_s * 1000), 1)}")
            rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        return [int(v) for (v,) in rows]

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
