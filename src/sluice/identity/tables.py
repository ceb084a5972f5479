"""The identity graph's tables, on SQLite or PostgreSQL, behind one small connection type.

The tables belong to the identity package, not to the store: on SQLite they live in a file of
their own (`<data dir>/identity.db`), so a step's write transaction never holds the log's
write lock that the collector commits under; on PostgreSQL they sit beside the store's tables in
the same database. Every statement is written once, with `?` placeholders; the one dialect
difference in the SQL text (a list parameter) goes through `in_list`.

    identity_position  space → seq (the consumer's position), clock_ms (the log's logical
                       clock: newest received_at seen), the rules' fingerprint, counters
    profiles           space, profile_id → collection, merged_into (union-find parent, always
                       a live profile), first message and source, created/updated (the
                       last event is the newest of its profile_events)
    identities         space, collection, id_type, id_value → profile_id (always live), first
                       message and source, first/last seen (for limit windows)
    profile_traits     space, profile_id, key → value (JSON), source_id, updated_ms, seq:
                       the newest by (event time, seq) wins
    profile_events     space, profile_id, seq: an index into the log, by the profile the event
                       resolved to then (read through `merged_into` for a merged profile)
    merges             space, loser → winner, seq, message_id, reason, at_ms
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from sluice.identity.checkpoint import Checkpointer

SQLITE_FILE = "identity.db"
# Reads through a memory map rather than a read() per page missing from SQLite's cache: at a
# million profiles a step's lookups land on random pages of a 1 GB file (+9 % mixed events/s,
# bench/identity.py). SQLite caps it at its compile-time maximum (2 GB by default).
SQLITE_MMAP_BYTES = 1 << 32
BIG = "BIGINT"
Column = tuple[str, str]  # (name, SQL type: TEXT or BIGINT)
TABLES = ("profiles", "identities", "profile_traits", "profile_events", "merges")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS identity_position (
        space TEXT PRIMARY KEY, seq BIGINT NOT NULL, clock_ms BIGINT NOT NULL,
        first_seq BIGINT, rules TEXT NOT NULL, rebuild_needed INTEGER NOT NULL DEFAULT 0,
        events BIGINT NOT NULL DEFAULT 0, merges BIGINT NOT NULL DEFAULT 0,
        refused BIGINT NOT NULL DEFAULT 0, demoted BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS profiles (
        space TEXT NOT NULL, profile_id TEXT NOT NULL, collection TEXT NOT NULL,
        merged_into TEXT, first_seq BIGINT NOT NULL, created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL, first_message_id TEXT NOT NULL,
        first_source_id TEXT NOT NULL, PRIMARY KEY (space, profile_id)){rowid}""",
    # Indexes lead with the looked-up column, not `space`: SQLite (without statistics) would
    # otherwise search the primary key by `space` alone, a scan of the whole space.
    """CREATE INDEX IF NOT EXISTS profiles_merged_into ON profiles (merged_into, space)
        WHERE merged_into IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS identities (
        space TEXT NOT NULL, collection TEXT NOT NULL, id_type TEXT NOT NULL,
        id_value TEXT NOT NULL, profile_id TEXT NOT NULL, source_id TEXT NOT NULL,
        first_message_id TEXT NOT NULL, first_seen_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        PRIMARY KEY (space, collection, id_type, id_value)){rowid}""",
    "CREATE INDEX IF NOT EXISTS identities_profile ON identities (profile_id, space)",
    """CREATE TABLE IF NOT EXISTS profile_traits (
        space TEXT NOT NULL, profile_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        source_id TEXT NOT NULL, updated_ms BIGINT NOT NULL, seq BIGINT NOT NULL,
        PRIMARY KEY (space, profile_id, key)){rowid}""",
    """CREATE TABLE IF NOT EXISTS profile_events (
        space TEXT NOT NULL, profile_id TEXT NOT NULL, seq BIGINT NOT NULL,
        PRIMARY KEY (space, profile_id, seq)){rowid}""",
    """CREATE TABLE IF NOT EXISTS merges (
        space TEXT NOT NULL, loser TEXT NOT NULL, winner TEXT NOT NULL, seq BIGINT NOT NULL,
        message_id TEXT NOT NULL, reason TEXT NOT NULL, at_ms BIGINT NOT NULL,
        PRIMARY KEY (space, loser))""",
    "CREATE INDEX IF NOT EXISTS merges_winner ON merges (winner, space)",
]


# Room left in each heap page on PostgreSQL (new pages only: a table made before keeps its
# full pages until rewritten), so that an update of a row stays on its page without a new index
# entry (a HOT update). A profile's trait is rewritten whenever an event sets it again: on full
# pages each such update wrote a new tuple elsewhere, a primary-key entry and a full image of
# both pages to the WAL (mixed events at 1M profiles: 29k page images, 232 MB for 20k
# updates; with the room, 16k and 121 MB).
_FILLFACTORS = {"profile_traits": 90}


class IdentityDb:
    """One connection to the identity tables; statements use `?` placeholders."""

    dialect = ""
    checkpointer: Checkpointer | None = None  # SQLite's consumer connection only

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def transaction(self, space: str) -> contextlib.AbstractContextManager[None]:
        """A write transaction that owns the space's position until it ends: two runners
        (the worker and `sluice identity rebuild`) never apply one step twice."""
        raise NotImplementedError

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """A read-only transaction: its reads see one state of the tables (Profiles Sync)."""
        raise NotImplementedError

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`IN (...)` for these values: SQL text and its parameters."""
        raise NotImplementedError

    def insert_rows(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        """`INSERT INTO table (columns) <rows> <tail>` (`tail`: an ON CONFLICT clause), as one
        set-based statement where the backend has one."""
        raise NotImplementedError

    def copy_rows(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Rows known not to be stored yet (no conflict to check): PostgreSQL's COPY."""
        self.insert_rows(table, columns, rows)

    def update_rows(
        self,
        table: str,
        sets: Sequence[Column],
        keys: Sequence[Column],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """`UPDATE table SET sets WHERE keys` for each row (the set values, then the keys)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteIdentityDb(IdentityDb):
    dialect = "sqlite"

    def __init__(self, path: Path, background_checkpoints: bool = False) -> None:
        """`background_checkpoints`: for the consumer's connection, the file's busy writer;
        its WAL checkpoints then run on a thread of their own (checkpoint.py)."""
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # Derived data: a commit lost to a power cut is redone from the log (the position is
        # lost with it), so NORMAL's cheaper commits are safe here.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        for statement in _SCHEMA:
            self.conn.execute(statement.replace("{rowid}", " WITHOUT ROWID"))
        self.checkpointer: Checkpointer | None = None
        if background_checkpoints:
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.checkpointer = Checkpointer(path)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self, space: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if self.checkpointer is not None:
                stack.enter_context(self.checkpointer.writing(self.conn))
            self.conn.execute("BEGIN IMMEDIATE")  # the file's one writer, from the start
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        self.conn.execute("BEGIN")  # deferred: a WAL reader, never blocking the consumer
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"IN ({','.join('?' * len(values))})", list(values)

    def insert_rows(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        names = ", ".join(name for name, _ in columns)
        marks = ", ".join("?" * len(columns))
        self.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}", rows)

    def update_rows(
        self,
        table: str,
        sets: Sequence[Column],
        keys: Sequence[Column],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        assigned = ", ".join(f"{name} = ?" for name, _ in sets)
        where = " AND ".join(f"{name} = ?" for name, _ in keys)
        self.executemany(f"UPDATE {table} SET {assigned} WHERE {where}", rows)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.conn.close()


class PostgresIdentityDb(IdentityDb):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.conn: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
            url, autocommit=True, application_name="sluice-identity"
        )
        # Derived data, as on SQLite (synchronous=NORMAL): a commit lost to a server crash
        # loses its position with it and is redone from the log; this session's commits then
        # need not wait for their WAL to reach the disk. Other sessions are unaffected.
        self.conn.execute("SET synchronous_commit = off")
        # A step's statements are index searches and inserts, one per row: past PostgreSQL's
        # JIT threshold (a step of 20,000 keys), compiling them took longer than running them
        # (identifier lookups at 1M profiles: 487 ms with JIT, 359 ms without).
        self.conn.execute("SET jit = off")
        with self.conn.transaction():
            # Several nodes may start at once: one creates, the others wait for it.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('sluice-identity-schema'))")
            for statement in _SCHEMA:
                self.conn.execute(statement.replace("{rowid}", ""))
            for table, fill in _FILLFACTORS.items():
                options = self.conn.execute(
                    "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table]
                ).fetchone()
                if options is None or f"fillfactor={fill}" not in (options[0] or []):
                    self.conn.execute(f"ALTER TABLE {table} SET (fillfactor = {fill})")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), rows)

    @contextlib.contextmanager
    def transaction(self, space: str) -> Iterator[None]:
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sluice-identity:{space}",)
            )
            yield

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        with self.conn.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [list(values)]

    def probe(
        self,
        columns: str,
        table: str,
        keys: Sequence[Column],
        rows: Sequence[Sequence[Any]],
        where: str = "",
        params: Sequence[Any] = (),
    ) -> list[tuple[Any, ...]]:
        """`SELECT columns FROM table WHERE keys = row [AND where]` for each of `rows`, in one
        statement: a nested loop of index searches whatever the table's statistics say.

        A plain join of the keys with the table is planned from statistics, and a table that
        grew fast has none (autovacuum analyzes it later, or never where it is off): its
        planner then took `space = ?` for a selective condition and hashed the whole table
        (3M identities, 10 s) for each step's 5,000 keys. `OFFSET 0` keeps the lateral
        subquery from being flattened into such a join."""
        if not rows:
            return []
        match = " AND ".join(f"t.{name} = k.{name}" for name, _ in keys)
        return self.execute(
            f"SELECT t.* FROM {_unnest(keys, 'k')} CROSS JOIN LATERAL (SELECT {columns}"
            f" FROM {table} AS t WHERE {match}{where} OFFSET 0) AS t",
            [*(list(column) for column in zip(*rows, strict=True)), *params],
        )

    def insert_rows(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        self.execute(
            f"INSERT INTO {table} ({names}) SELECT * FROM {_unnest(columns)}{tail}",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def copy_rows(
        self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        with (
            self.conn.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def update_rows(
        self,
        table: str,
        sets: Sequence[Column],
        keys: Sequence[Column],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        if not rows:
            return
        assigned = ", ".join(f"{name} = u.{name}" for name, _ in sets)
        where = " AND ".join(f"t.{name} = u.{name}" for name, _ in keys)
        self.execute(
            f"UPDATE {table} AS t SET {assigned} FROM {_unnest([*sets, *keys])} WHERE {where}",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def close(self) -> None:
        self.conn.close()


def _unnest(columns: Sequence[Column], alias: str = "u") -> str:
    """`unnest(?::text[], ...) AS u(name, ...)`: rows sent as one array per column, so a
    step's writes to a table are one statement and one round trip."""
    arrays = ", ".join(f"?::{sql_type}[]" for _, sql_type in columns)
    return f"unnest({arrays}) AS {alias}({', '.join(name for name, _ in columns)})"


def open_identity_db(
    data_dir: Path, database_url: str | None, consumer: bool = False
) -> IdentityDb:
    """The identity tables beside the store: PostgreSQL's database, or identity.db (with its
    checkpoints in the background for the `consumer`'s connection)."""
    if database_url:
        return PostgresIdentityDb(database_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteIdentityDb(data_dir / SQLITE_FILE, background_checkpoints=consumer)


def has_table(db: IdentityDb, table: str) -> bool:
    """Whether `table` exists (Engage's tables appear only once Engage has run)."""
    if db.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = "SELECT 1 FROM information_schema.tables WHERE table_name = ?"
    return bool(db.execute(sql, [table]))
