"""Deletion in the SQL warehouses Sluice loads: DuckDB files and PostgreSQL databases.

Each call deletes the subject's rows from every table Sluice loaded (warehouse_rows.py), with
their discarded values, in ONE transaction per warehouse: a kill -9 rolls it all back and the
next call does it again (a `DELETE ... WHERE user_id IN (...)` is idempotent).

A load in progress must not put the rows back. The runner deletes the log first; what remains
is a load that read the subject's events before that and commits after this deletion:

- **DuckDB**: the loader holds the file open, for writing, from before it reads the log until
  after its last commit (one `load_once`), and DuckDB lets one process at a time do so. This
  target opens the file the same way (with its own configuration, so that even a loader in the
  same process cannot share it: DuckDB refuses a second configuration of an open file), so a
  load is wholly before the deletion (its rows are deleted) or wholly after it (it reads the
  log without the subject). A file held by a load answers RETRYING.
- **PostgreSQL**: the loader holds its lock (`pg_advisory_xact_lock(hashtext(<warehouse id>))`)
  only while it commits, not while it reads the log. So the first call records a *fence* in
  the warehouse, `_sluice.deletions` (the regulation and the log's last position then, after
  the log's deletion), and each call deletes under the loader's lock; the deletion is FINISHED
  once the warehouse's position has reached the fence: every load that could have read the
  subject's events has committed by then, and its rows were deleted by that call. Before, it
  answers RETRYING, naming the position it waits for.

After the commit the touched PostgreSQL tables are vacuumed, so the dead rows leave the heap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.warehouse_rows import (
    COLUMNS_SQL,
    SubjectTable,
    not_supported_reason,
    subject_tables,
)
from sluice.warehouse.base import DISCARDS_TABLE, LOADS_TABLE, META_SCHEMA

# A configuration no loader uses: DuckDB refuses to open a file already open in this process
# with another configuration, so this target and a loader never share one instance.
_ERASER_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "custom_user_agent": "sluice-privacy"
}
# Beside a DuckDB file while its copy without the deleted rows is made (`_rewrite`).
REWRITE_PENDING = ".erase-pending"
DELETIONS_TABLE = "deletions"  # regulation_id PRIMARY KEY, fence, requested_at (PostgreSQL)
# warehouse/postgres.py's advisory lock on a schema: (0x51C3, crc32(schema + NUL) - 2**31).
_TABLE_LOCK_SPACE = 0x51C3

LogHead = Callable[[], int]


def _durable_touch(path: Path) -> None:
    path.touch()
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str, table: str) -> str:
    return f"{_quote(schema)}.{_quote(table)}"


class _WarehouseTarget:
    """What both warehouse targets share: their leg's name and the subjects they cannot take."""

    warehouse_id: str

    @property
    def name(self) -> str:
        return f"warehouse:{self.warehouse_id}"

    def refused(self, subject: Subject) -> TargetOutcome | None:
        reason = not_supported_reason(subject)
        if reason is None:
            return None
        return TargetOutcome(self.name, "NOT_SUPPORTED", f"warehouse {self.warehouse_id}: {reason}")


class DuckDBWarehouseTarget(_WarehouseTarget):
    """The subject's rows out of a DuckDB warehouse file, in one transaction."""

    def __init__(self, warehouse_id: str, path: Path) -> None:
        self.warehouse_id = warehouse_id
        self.path = path

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        refused = self.refused(subject)
        if refused is not None:
            return refused
        return await asyncio.to_thread(self._delete, subject)

    def _delete(self, subject: Subject) -> TargetOutcome:
        if not self.path.exists():
            return TargetOutcome(
                self.name, "FINISHED", f"warehouse {self.warehouse_id}: no file yet ({self.path})"
            )
        try:
            db = duckdb.connect(str(self.path), config=_ERASER_CONFIG)
        except duckdb.Error as exc:
            return TargetOutcome(
                self.name,
                "RETRYING",
                f"warehouse {self.warehouse_id}: {self.path} is open in another process or"
                f" connection (a load in progress?), tried again later: {exc}",
            )
        pending = self.path.with_name(self.path.name + REWRITE_PENDING)
        try:
            removed, tables = self._erase(db, subject)
            db.execute("CHECKPOINT")  # the deleted rows' blocks are rewritten now, not later
            if removed or pending.exists():
                _durable_touch(pending)
                self._rewrite(db)
                pending.unlink()
        except (duckdb.Error, OSError) as exc:
            return TargetOutcome(
                self.name, "RETRYING", f"warehouse {self.warehouse_id}: deletion failed: {exc}"
            )
        finally:
            db.close()
        return TargetOutcome(
            self.name,
            "FINISHED",
            f"warehouse {self.warehouse_id}: {removed} rows deleted from {tables} tables",
            removed,
        )

    def _rewrite(self, db: duckdb.DuckDBPyConnection) -> None:
        """Copy the database into a new file and rename it over the old one.

        DuckDB reuses a deleted row's blocks but does not wipe them: the subject's bytes stay in
        the file's free blocks until overwritten. A copy holds only live rows. The rename happens
        while this connection still holds the old file, so a loader waiting for it opens the
        new, complete file; a crash before the rename leaves the marker, and the next call
        rewrites again (the rows are gone already)."""
        fresh = self.path.with_name(f".{self.path.name}.erase.tmp")
        fresh.unlink(missing_ok=True)
        fresh.with_name(fresh.name + ".wal").unlink(missing_ok=True)
        (name,) = db.execute("SELECT current_database()").fetchone() or ("",)
        quoted = str(fresh).replace("'", "''")
        db.execute(f"ATTACH '{quoted}' AS sluice_erase_copy")
        try:
            db.execute(f"COPY FROM DATABASE {_quote(str(name))} TO sluice_erase_copy")
        finally:
            db.execute("DETACH sluice_erase_copy")
        with open(fresh, "rb") as f:
            os.fsync(f.fileno())
        os.replace(fresh, self.path)
        _fsync_dir(self.path.parent)

    @staticmethod
    def _erase(db: duckdb.DuckDBPyConnection, subject: Subject) -> tuple[int, int]:
        ids = list(subject.ids)
        db.execute("BEGIN TRANSACTION")
        try:
            tables = subject_tables(db.execute(COLUMNS_SQL).fetchall(), subject)
            meta = {name for (name,) in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [META_SCHEMA],
            ).fetchall()}  # fmt: skip
            removed = touched = 0
            for t in tables:
                gone = [
                    row_id
                    for (row_id,) in db.execute(
                        f"DELETE FROM {_qualified(t.schema, t.table)}"
                        f" WHERE {_quote(t.column)} IN (SELECT unnest(?::VARCHAR[]))"
                        " RETURNING id",
                        [ids],
                    ).fetchall()
                ]
                if not gone:
                    continue
                removed += len(gone)
                touched += 1
                digests = f"ids:{t.schema}.{t.table}"  # warehouse/duckdb.py's id digests
                if digests in meta:
                    db.execute(
                        f"DELETE FROM {_qualified(META_SCHEMA, digests)}"
                        " WHERE h IN (SELECT md5_number(unnest(?::VARCHAR[])))",
                        [gone],
                    )
                if DISCARDS_TABLE in meta:
                    db.execute(
                        f"DELETE FROM {_qualified(META_SCHEMA, DISCARDS_TABLE)} WHERE schema = ?"
                        " AND table_name = ? AND row_id IN (SELECT unnest(?::VARCHAR[]))",
                        [t.schema, t.table, gone],
                    )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                db.execute("ROLLBACK")
            raise
        return removed, touched


class PostgresWarehouseTarget(_WarehouseTarget):
    """The subject's rows out of a PostgreSQL warehouse, under the loader's lock, with a fence."""

    def __init__(self, warehouse_id: str, url: str, log_head: LogHead) -> None:
        self.warehouse_id = warehouse_id
        self._url = url
        self._log_head = log_head

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        refused = self.refused(subject)
        if refused is not None:
            return refused
        return await asyncio.to_thread(self._delete, regulation_id, subject)

    def _delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        import psycopg
        from psycopg import sql

        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            return TargetOutcome(
                self.name,
                "RETRYING",
                f"warehouse {self.warehouse_id}: cannot connect: {_pg_text(exc)}",
            )
        try:
            with conn:
                removed, touched, fence, position = self._erase(conn, regulation_id, subject)
                for t in touched:  # dead rows out of the heap (not possible in a transaction)
                    conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(t.schema, t.table)))
        except psycopg.Error as exc:
            return TargetOutcome(
                self.name,
                "RETRYING",
                f"warehouse {self.warehouse_id}: deletion failed: {_pg_text(exc)}",
            )
        done = f"warehouse {self.warehouse_id}: {removed} rows deleted from {len(touched)} tables"
        if position < fence:
            return TargetOutcome(
                self.name,
                "RETRYING",
                f"{done}; waiting for its loads to pass log position {fence} (it is at"
                f" {position}): a load that read the subject's events before the log's deletion"
                " may still commit them",
                removed,
            )
        return TargetOutcome(self.name, "FINISHED", done, removed)

    def _erase(
        self, conn: Any, regulation_id: str, subject: Subject
    ) -> tuple[int, list[SubjectTable], int, int]:
        from psycopg import sql

        ids = list(subject.ids)
        meta_lock = zlib.crc32(f"{META_SCHEMA}\x00".encode()) - 2**31
        deletions = sql.Identifier(META_SCHEMA, DELETIONS_TABLE)
        with conn.transaction(), conn.cursor() as cur:
            # The loader's own lock: no load commits while these rows go.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.warehouse_id,))
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_TABLE_LOCK_SPACE, meta_lock))
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(META_SCHEMA))
            )
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (regulation_id text PRIMARY KEY,"
                    " fence bigint NOT NULL, requested_at timestamptz NOT NULL DEFAULT now())"
                ).format(deletions)
            )
            row = cur.execute(
                sql.SQL("SELECT fence FROM {} WHERE regulation_id = %s").format(deletions),
                (regulation_id,),
            ).fetchone()
            if row is None:
                fence = self._log_head()
                cur.execute(
                    sql.SQL("INSERT INTO {} (regulation_id, fence) VALUES (%s, %s)").format(
                        deletions
                    ),
                    (regulation_id, fence),
                )
            else:
                fence = int(row[0])
            tables = subject_tables(cur.execute(COLUMNS_SQL).fetchall(), subject)
            has_discards = cur.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{META_SCHEMA}.{DISCARDS_TABLE}",)
            ).fetchone() == (True,)
            removed, touched = 0, []
            for t in tables:
                gone = [
                    r[0]
                    for r in cur.execute(
                        sql.SQL("DELETE FROM {} WHERE {} = ANY(%s) RETURNING id").format(
                            sql.Identifier(t.schema, t.table), sql.Identifier(t.column)
                        ),
                        (ids,),
                    ).fetchall()
                ]
                if not gone:
                    continue
                removed += len(gone)
                touched.append(t)
                if has_discards:
                    cur.execute(
                        sql.SQL(
                            "DELETE FROM {} WHERE schema = %s AND table_name = %s"
                            " AND row_id = ANY(%s)"
                        ).format(sql.Identifier(META_SCHEMA, DISCARDS_TABLE)),
                        (t.schema, t.table, gone),
                    )
            has_loads = cur.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{META_SCHEMA}.{LOADS_TABLE}",)
            ).fetchone() == (True,)
            position = 0
            if has_loads:
                found = cur.execute(
                    sql.SQL("SELECT position FROM {} WHERE loader_id = %s").format(
                        sql.Identifier(META_SCHEMA, LOADS_TABLE)
                    ),
                    (self.warehouse_id,),
                ).fetchone()
                position = 0 if found is None else int(found[0])
        return removed, touched, fence, position


def _pg_text(exc: Exception) -> str:
    """psycopg's message without the connection string (which may hold a password)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
