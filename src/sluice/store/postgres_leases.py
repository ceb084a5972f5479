"""Leases, cursors and log retention in the PostgreSQL store.

Leases are judged by the database's clock, so the nodes' clocks may disagree: a claim is one
upsert that succeeds only when the row is free, expired, or already ours. Retention drops whole
partitions of the log (see postgres_schema.py): a partition goes only when every seq in it is at
or below the trim point and its newest event is older than the cut-off, so a partition that is
partly covered stays. Dropping is `DETACH PARTITION ... CONCURRENTLY` then `DROP TABLE`, which
waits for readers of the partition but never blocks the appenders.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors, sql

from sluice.store.base_workers import Lease
from sluice.store.postgres_connection import PostgresConnections
from sluice.store.postgres_schema import NOW_MS_SQL, TRIM_LOCK, partitions

TRIM_ATTEMPTS = 3  # passes of a trim whose detaches PostgreSQL cancels to break deadlocks
log = logging.getLogger(__name__)


class PostgresLeases(PostgresConnections):
    """Mixed into `PostgresStore`."""

    def claim_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        with self._connection() as conn:
            row = conn.execute(
                f"INSERT INTO leases (name, holder, expires_at) VALUES (%s, %s, {NOW_MS_SQL} + %s)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                f" WHERE leases.holder = excluded.holder OR leases.expires_at <= {NOW_MS_SQL}"
                " RETURNING 1",
                (name, holder, int(ttl_s * 1000)),
            ).fetchone()
        return row is not None

    def release_lease(self, name: str, holder: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    def leases(self) -> list[Lease]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT name, holder, expires_at FROM leases ORDER BY name"
            ).fetchall()
        return [Lease(n, h, int(e)) for n, h, e in rows]

    def cursors(self) -> dict[str, int]:
        with self._connection() as conn:
            rows = conn.execute("SELECT consumer, seq FROM cursors").fetchall()
        return {c: int(s) for c, s in rows}

    def trim_log(self, up_to_seq: int, received_before_ms: int) -> int:
        """Drop the oldest partitions that are wholly trimmable; returns how many events went.

        Stops at the first partition that must stay, so the log remains one contiguous range.
        A detach that PostgreSQL cancels to break a deadlock (with a session that was making
        partitions, say) is finished on another pass: the other side's wait ended with it.
        """
        dropped: dict[str, int] = {}
        with self._connection() as conn:
            # Never past the horizon: rows there may still be joined by smaller seqs.
            up_to = min(up_to_seq, self._horizon(conn))
            conn.execute("SELECT pg_advisory_lock(%s)", (TRIM_LOCK,))
            try:
                for attempt in range(1, TRIM_ATTEMPTS + 1):
                    try:
                        self._drop_partitions(conn, up_to, received_before_ms, dropped)
                        break
                    except errors.DeadlockDetected:
                        if attempt == TRIM_ATTEMPTS:
                            raise
                        log.info(
                            "event log trim: PostgreSQL cancelled a partition's detach to break"
                            " a deadlock; finishing it (pass %d of %d)",
                            attempt + 1,
                            TRIM_ATTEMPTS,
                        )
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (TRIM_LOCK,))
        return sum(dropped.values())

    @staticmethod
    def _drop_partitions(
        conn: psycopg.Connection[Any], up_to: int, received_before_ms: int, dropped: dict[str, int]
    ) -> None:
        """One pass of `trim_log`; `dropped` gets each partition it drops with its events, noted
        before the detach, so that one this call finishes on a later pass keeps its count."""
        for part in partitions(conn):
            name = sql.Identifier(part.name)
            if part.detach_pending:  # an earlier trim (or this one's last pass) was interrupted
                conn.execute(
                    sql.SQL("ALTER TABLE events DETACH PARTITION {} FINALIZE").format(name)
                )
                conn.execute(sql.SQL("DROP TABLE {}").format(name))
                continue
            if part.hi - 1 > up_to:
                break
            row = conn.execute(
                sql.SQL("SELECT count(*), max(received_at) FROM {}").format(name)
            ).fetchone()
            assert row is not None
            count, newest = int(row[0]), row[1]
            if newest is not None and newest >= received_before_ms:
                break
            dropped[part.name] = count
            conn.execute(
                sql.SQL("ALTER TABLE events DETACH PARTITION {} CONCURRENTLY").format(name)
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(name))
