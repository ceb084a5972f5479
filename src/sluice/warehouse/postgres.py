"""The PostgreSQL warehouse: Segment's warehouse schema in a database most teams already run.

A load is one transaction: tables, columns, rows, discarded values and the loader's position
commit together or not at all. Rows travel by binary COPY, PostgreSQL's bulk path.

Deduplication on `id` is the database's job (every table's `id` is its primary key). Loads are
optimistic: rows are COPied straight into their tables under one savepoint, which is right
whenever no id is already present, the common case since the log is deduplicated on ingest.
When one is (a replay, or two warehouses that share a database), the savepoint is rolled back
and the load redone the careful way: COPY into a temporary staging table per batch, then
`INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING`. Upsert tables (users, accounts) always go
through staging, with `DO UPDATE`. The direct path loads about 1.5x faster.

Locking, so that concurrent loaders never deadlock:
- `pg_advisory_xact_lock(hashtext(loader_id))` first: a second loader with the same id waits for
  the first to commit, then sees its position.
- Then an advisory lock on each new schema and each table the load writes, all taken before any
  row is written and in one global order (by key), so loaders cannot wait on each other in a
  cycle. Holding a table's lock makes the loader the table's only writer until it commits: no
  race to `CREATE TABLE` or `ADD COLUMN`, no row-level waits between loaders, and the direct
  COPY can only collide with rows already committed. `widen` takes the same lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg import errors, sql
from psycopg.copy import QueuedLibpqWriter

from sluice.warehouse.base import (
    CAPPED_TABLE,
    DISCARDS_TABLE,
    LOADS_TABLE,
    META_SCHEMA,
    CappedEvents,
    ColumnType,
    Discard,
    SchemaChangeError,
    TableBatch,
    WarehouseError,
    WarehouseUnavailable,
    check_widening,
)
from sluice.warehouse.pgcopy import binary_rows
from sluice.warehouse.postgres_catalog import (
    DATA_TYPES,
    FROM_PG,
    PG_TYPES,
    Cursor,
    ensure_table,
    lock_table,
    read_columns,
    schema_key,
    table_key,
)

# Binary COPY needs the wire type of each column (psycopg's names).
_COPY_TYPES: Mapping[ColumnType, str] = {
    ColumnType.TIMESTAMP: "timestamptz",
    ColumnType.INTEGER: "int8",
    ColumnType.FLOAT: "float8",
    ColumnType.BOOLEAN: "bool",
    ColumnType.VARCHAR: "text",
}


_ISO_FORMAT = sql.Literal('YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')

# PostgreSQL text cannot hold NUL; JSON strings can ("\u0000"). Stored as U+FFFD instead.
_NUL, _NUL_STAND_IN = "\x00", "\ufffd"

# The loader's lock: the one-key (bigint) form, which PostgreSQL keeps apart from the two-key
# locks on tables and schemas (postgres_catalog.py).
_LOCK_LOADER = "SELECT pg_advisory_xact_lock(hashtext(%s))"

_META_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {META_SCHEMA};
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.{DISCARDS_TABLE} (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema text NOT NULL,
    table_name text NOT NULL,
    column_name text NOT NULL,
    row_id text NOT NULL,
    value text NOT NULL,
    reason text NOT NULL,
    discarded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.{LOADS_TABLE} (
    loader_id text PRIMARY KEY,
    position bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.{CAPPED_TABLE} (
    schema text NOT NULL,
    table_name text NOT NULL,
    event_text text NOT NULL,
    events bigint NOT NULL,
    first_capped_at timestamptz NOT NULL DEFAULT now(),
    last_capped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema, table_name)
);
"""

_META_MISSING = f"""
SELECT to_regclass('{META_SCHEMA}.{DISCARDS_TABLE}') IS NULL
    OR to_regclass('{META_SCHEMA}.{LOADS_TABLE}') IS NULL
    OR to_regclass('{META_SCHEMA}.{CAPPED_TABLE}') IS NULL
"""

_SET_POSITION = sql.SQL(
    "INSERT INTO {} (loader_id, position, loaded_at) VALUES (%s, %s, now()) "
    "ON CONFLICT (loader_id) DO UPDATE SET position = EXCLUDED.position, loaded_at = now()"
).format(sql.Identifier(META_SCHEMA, LOADS_TABLE))

# Rows are written in key order, so two loaders capping the same names never wait in a cycle.
_ADD_CAPPED = sql.SQL(
    "INSERT INTO {0} AS c (schema, table_name, event_text, events) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (schema, table_name) DO UPDATE "
    "SET events = c.events + EXCLUDED.events, last_capped_at = now()"
).format(sql.Identifier(META_SCHEMA, CAPPED_TABLE))

_COPY_DISCARDS = sql.SQL(
    "COPY {} (schema, table_name, column_name, row_id, value, reason) FROM STDIN"
).format(sql.Identifier(META_SCHEMA, DISCARDS_TABLE))


class PostgresBackend:
    """Loads Segment-shaped tables into PostgreSQL (one connection; one call at a time)."""

    max_identifier_length: ClassVar[int] = 63

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn = self._connect()
        self._stage_names = itertools.count()
        with self._transaction() as cur:
            # Only when missing: a role may load into tables it cannot create schemas beside.
            if cur.execute(_META_MISSING).fetchone() != (False,):
                lock_table(cur, META_SCHEMA, "")
                cur.execute(_META_DDL)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            conn = psycopg.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        # UTC whatever the server's default zone, for anything that renders a timestamp as text.
        conn.execute("SET TIME ZONE 'UTC'")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur
        except psycopg.OperationalError as exc:
            # Also deadlocks, lock timeouts and cancellations: worth retrying, like an outage.
            raise WarehouseUnavailable(f"PostgreSQL: {exc}") from exc
        except psycopg.Error as exc:
            raise WarehouseError(f"PostgreSQL: {exc}") from exc

    # -- reading ------------------------------------------------------------------------------

    def columns(self, schema: str) -> dict[str, dict[str, ColumnType]]:
        with self._transaction() as cur:
            tables = read_columns(cur, [schema]).get(schema, {})
        return {
            table: {c: FROM_PG.get(t, ColumnType.VARCHAR) for c, t in columns.items()}
            for table, columns in tables.items()
        }

    def position(self, loader_id: str) -> int:
        query = sql.SQL("SELECT position FROM {} WHERE loader_id = %s").format(
            sql.Identifier(META_SCHEMA, LOADS_TABLE)
        )
        with self._transaction() as cur:
            row = cur.execute(query, (loader_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def discards(self, limit: int = 100) -> list[Discard]:
        query = sql.SQL(
            "SELECT schema, table_name, column_name, row_id, value, reason FROM {} "
            "ORDER BY seq DESC LIMIT %s"
        ).format(sql.Identifier(META_SCHEMA, DISCARDS_TABLE))
        with self._transaction() as cur:
            return [Discard(*row) for row in cur.execute(query, (limit,))]

    def capped_events(self, schema: str | None = None) -> list[CappedEvents]:
        query = sql.SQL(
            "SELECT schema, table_name, event_text, events FROM {} "
            "WHERE %s::text IS NULL OR schema = %s ORDER BY schema, table_name"
        ).format(sql.Identifier(META_SCHEMA, CAPPED_TABLE))
        with self._transaction() as cur:
            return [CappedEvents(*row) for row in cur.execute(query, (schema, schema))]

    # -- writing ------------------------------------------------------------------------------

    def load(
        self,
        batches: Sequence[TableBatch],
        discards: Sequence[Discard],
        loader_id: str,
        position: int,
        capped: Sequence[CappedEvents] = (),
    ) -> None:
        with self._transaction() as cur:
            cur.execute(_LOCK_LOADER, (loader_id,))
            tables = self._prepare(cur, batches)
            direct: list[TableBatch] = []
            staged: list[TableBatch] = []
            for batch in batches:
                if not batch.row_count:
                    continue
                have = tables[batch.schema, batch.table]
                # Binary COPY sends values as the batch types them; a column of another type
                # (changed by hand) needs the cast an INSERT ... SELECT makes.
                same = all(have[c] == DATA_TYPES[t] for c, t in batch.columns.items())
                (direct if same and not batch.upsert else staged).append(batch)
            try:
                with self._conn.transaction():  # a savepoint: the direct path may collide
                    for batch in direct:
                        self._copy(cur, batch, sql.Identifier(batch.schema, batch.table))
            except (errors.UniqueViolation, errors.CharacterNotInRepertoire):
                staged = direct + staged
            for batch in staged:
                self._stage_and_insert(cur, batch, list(tables[batch.schema, batch.table]))
            if discards:
                with cur.copy(_COPY_DISCARDS) as copy:
                    for d in discards:
                        fields = (d.schema, d.table, d.column, d.row_id, d.value, d.reason)
                        copy.write_row([_clean(v) for v in fields])
            if capped:
                cur.executemany(
                    _ADD_CAPPED,
                    [
                        (c.schema, c.table, _clean(c.event_text), c.events)
                        for c in sorted(capped, key=lambda c: (c.schema, c.table))
                    ],
                )
            cur.execute(_SET_POSITION, (loader_id, position))

    def _prepare(
        self, cur: Cursor, batches: Sequence[TableBatch]
    ) -> dict[tuple[str, str], dict[str, str]]:
        """Lock every schema and table the load writes, create what is missing.

        Returns each table's columns with their `data_type`.
        """
        existing = read_columns(cur, sorted({b.schema for b in batches}))
        for schema in sorted({b.schema for b in batches} - existing.keys(), key=schema_key):
            lock_table(cur, schema, "")
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        tables: dict[tuple[str, str], dict[str, str]] = {}
        for batch in sorted(batches, key=table_key):
            lock_table(cur, batch.schema, batch.table)
            have = existing.get(batch.schema, {}).get(batch.table)
            if have is None or any(c not in have for c in batch.columns):
                have = ensure_table(cur, batch)
            tables[batch.schema, batch.table] = have
        return tables

    def _copy(
        self, cur: Cursor, batch: TableBatch, into: sql.Identifier, clean: bool = False
    ) -> None:
        if batch.staged is not None:
            self._copy_staged(cur, batch, into)
            return
        names = list(batch.columns)
        types = [_COPY_TYPES[t] for t in batch.columns.values()]
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            into, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        row: Mapping[str, Any] = {}
        try:
            with cur.copy(copy_sql) as copy:
                copy.set_types(types)
                write = copy.write_row
                if clean:
                    for row in batch.rows:
                        write([_clean(row.get(n)) for n in names])
                else:
                    for row in batch.rows:
                        write(tuple(map(row.get, names)))
        except (TypeError, ValueError, OverflowError) as exc:
            raise WarehouseError(
                f"{batch.schema}.{batch.table}: a value of row {row.get('id')!r} does not fit"
                f" its column's type: {exc}"
            ) from exc

    @staticmethod
    def _copy_staged(cur: Cursor, batch: TableBatch, into: sql.Identifier) -> None:
        """Rows planned in DuckDB, read as Arrow and sent as binary COPY (`binary_rows`).

        Binary COPY spares PostgreSQL parsing text (1.6-1.8x faster than CSV for the bench's
        rows, timestamps above all), and encoding Arrow columns costs less than DuckDB writing
        CSV. The COPY writes from a thread (psycopg's queued writer), so encoding the next
        rows overlaps sending these.
        """
        staged = batch.staged
        assert staged is not None
        names = list(batch.columns)
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            into, sql.SQL(", ").join(map(sql.Identifier, names))
        )
        select = ", ".join(
            # PostgreSQL text cannot hold NUL: U+FFFD instead, as for rows planned in Python.
            f"replace({_quote(n)}, chr(0), '{_NUL_STAND_IN}') AS {_quote(n)}"
            if t is ColumnType.VARCHAR
            else _quote(n)
            for n, t in batch.columns.items()
        )
        query = f"SELECT {select} FROM ({staged.query})"
        with cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
            for block in binary_rows(staged.engine, query, list(batch.columns.values())):
                copy.write(block)

    def _stage_and_insert(self, cur: Cursor, batch: TableBatch, table_columns: list[str]) -> None:
        stage = sql.Identifier(f"_sluice_stage_{next(self._stage_names)}")
        cur.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
                stage,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(PG_TYPES[t]))
                    for n, t in batch.columns.items()
                ),
            )
        )
        self._copy(cur, batch, stage, clean=True)
        conflict: sql.Composable = sql.SQL("DO NOTHING")
        sets = [
            # Replace: every column takes the new row's value, NULL where the row has none.
            sql.SQL("{0} = EXCLUDED.{0}" if c in batch.columns else "{0} = NULL").format(
                sql.Identifier(c)
            )
            for c in table_columns
            if c != "id"
        ]
        if batch.upsert and sets:
            conflict = sql.SQL("DO UPDATE SET {}").format(sql.SQL(", ").join(sets))
        cols = sql.SQL(", ").join(map(sql.Identifier, batch.columns))
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (id) {}").format(
                sql.Identifier(batch.schema, batch.table), cols, cols, stage, conflict
            )
        )

    def widen(self, schema: str, table: str, column: str, new_type: ColumnType) -> None:
        with self._transaction() as cur:
            lock_table(cur, schema, table)
            have = read_columns(cur, [schema]).get(schema, {}).get(table)
            if have is None:
                raise SchemaChangeError(f"no table {schema}.{table}")
            found = FROM_PG.get(have[column], ColumnType.VARCHAR) if column in have else None
            old_type = check_widening(schema, table, column, found, new_type)
            col, pg_type = sql.Identifier(column), sql.SQL(PG_TYPES[new_type])
            using = sql.SQL("{}::{}").format(col, pg_type)
            if old_type is ColumnType.TIMESTAMP:
                # The text later timestamps get in a varchar column (types.as_text), not ::text's.
                using = sql.SQL("to_char({} AT TIME ZONE 'UTC', {})").format(col, _ISO_FORMAT)
            cur.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}").format(
                    sql.Identifier(schema, table), col, pg_type, using
                )
            )

    def close(self) -> None:
        self._conn.close()


def _quote(name: str) -> str:
    """A DuckDB identifier (for the queries over staged rows)."""
    return '"' + name.replace('"', '""') + '"'


def _clean(value: Any) -> Any:
    if type(value) is str and _NUL in value:
        return value.replace(_NUL, _NUL_STAND_IN)
    return value
