"""Leases, cursors and log retention in the PostgreSQL store.

Leases are judged by the database's clock, so the nodes' clocks may disagree: a claim is one
upsert that succeeds only when the row is free, expired, or already ours. Retention drops whole
partitions of the log (see postgres_schema.py): a partition goes only when every seq in it is at
or below the trim point and its newest event is older than the cut-off, so a partition that is
partly covered stays. Dropping is `DETACH PARTITION ... CONCURRENTLY` then `DROP TABLE`, which
waits for readers of the partition but never blocks the appenders.
"""

from __future__ import annotations

from psycopg import sql

from sluice.store.base import Lease
from sluice.store.postgres_connection import PostgresConnections
from sluice.store.postgres_schema import NOW_MS_SQL, TRIM_LOCK, partitions


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
        """
        total = 0
        with self._connection() as conn:
            # Never past the horizon: rows there may still be joined by smaller seqs.
            up_to = min(up_to_seq, self._horizon(conn))
            conn.execute("SELECT pg_advisory_lock(%s)", (TRIM_LOCK,))
            try:
                for part in partitions(conn):
                    name = sql.Identifier(part.name)
                    if part.detach_pending:  # an earlier trim was interrupted half-way
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
                    conn.execute(
                        sql.SQL("ALTER TABLE events DETACH PARTITION {} CONCURRENTLY").format(name)
                    )
                    conn.execute(sql.SQL("DROP TABLE {}").format(name))
                    total += count
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (TRIM_LOCK,))
        return total
