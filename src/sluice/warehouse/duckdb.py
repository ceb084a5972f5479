"""The embedded warehouse: Segment's tables in a DuckDB file (`<data_dir>/warehouse.duckdb`).

Rows planned column-wise (columnar.py) are already in this database: the planner keeps them in
an attached in-memory database (`stage()`), and each table gets one `INSERT ... SELECT` from there.
Rows planned event by event go in as Arrow tables (the perf baseline measured an Arrow insert at
116k rows/s against 0.6k for `executemany`). Either way the `INSERT ... SELECT` skips ids the
table already has (found through their digests in a large table, compared directly in a small
one: `_insert`), or, for users/accounts, follows a delete of the rows it replaces, all inside
the one transaction that also moves the loader's position.

DuckDB lets one process hold a file open for writing, and then no other process may open it, even
to read. The loader therefore opens the backend for one load and closes it right after, so that
`duckdb sluice-data/warehouse.duckdb` works between loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

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

SQL_TYPES: dict[ColumnType, str] = {
    ColumnType.TIMESTAMP: "TIMESTAMPTZ",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.VARCHAR: "VARCHAR",
}
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.VARCHAR: pa.string(),
}
# DuckDB's names for the types a column may have (also those a user gave it by hand).
_READ_TYPES = {
    "TIMESTAMP WITH TIME ZONE": ColumnType.TIMESTAMP,
    "TIMESTAMP": ColumnType.TIMESTAMP,
    "TIMESTAMP_NS": ColumnType.TIMESTAMP,
    "TIMESTAMP_MS": ColumnType.TIMESTAMP,
    "TIMESTAMP_S": ColumnType.TIMESTAMP,
    "BIGINT": ColumnType.INTEGER,
    "INTEGER": ColumnType.INTEGER,
    "SMALLINT": ColumnType.INTEGER,
    "TINYINT": ColumnType.INTEGER,
    "HUGEINT": ColumnType.INTEGER,
    "DOUBLE": ColumnType.FLOAT,
    "FLOAT": ColumnType.FLOAT,
    "BOOLEAN": ColumnType.BOOLEAN,
}
_BATCH_VIEW = "_sluice_batch"
CHECKPOINT_THRESHOLD = "1GB"  # of write-ahead log (DuckDB's default: 16MB)
_DIGESTS = "temp.main._sluice_digests"  # the digests of the ids a batch brings
STAGE_DATABASE = "sluice_stage"
_DISCARDS = f'"{META_SCHEMA}"."{DISCARDS_TABLE}"'
_DISCARD_COLUMNS = ("schema", "table_name", "column_name", "row_id", "value", "reason")
_CAPPED = f'"{META_SCHEMA}"."{CAPPED_TABLE}"'
# A table with fewer rows (this batch's included) keeps no id digests: its ids are compared
# with the batch's directly, an anti-join reading less than one row group of ids. A digest table
# takes a file block of its own (256 KiB) however few rows it holds, so one beside every small
# event table doubled the file: 5,000 event names made 10,005 tables and 2.4 GiB.
DIGESTS_FROM_ROWS = 122_880  # DuckDB's row group


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_type_of(sql_type: str) -> ColumnType:
    if sql_type.startswith(("DECIMAL", "NUMERIC")):
        return ColumnType.FLOAT
    return _READ_TYPES.get(sql_type, ColumnType.VARCHAR)


def ids_name(batch: TableBatch) -> str:
    """The table (in the meta schema) of the MD5 digests of the ids a table holds."""
    return f"ids:{batch.schema}.{batch.table}"


def ids_table(batch: TableBatch) -> str:
    return f"{quote(META_SCHEMA)}.{quote(ids_name(batch))}"


def arrow_table(batch: TableBatch) -> pa.Table:
    """The batch's rows as an Arrow table, converted by pyarrow as one array of structs.

    Reading the dicts in C this way took half the time of building one Python list per column
    (each value costs a Python-level lookup and append there); missing keys become nulls.
    """
    struct = pa.struct([(c, ARROW_TYPES[t]) for c, t in batch.columns.items()])
    return pa.Table.from_struct_array(pa.array(batch.rows, type=struct))


class DuckDBBackend:
    """A DuckDB file as a warehouse (one connection; not shared between threads)."""

    max_identifier_length: ClassVar[int] = 120

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = duckdb.connect(str(path))
        except (duckdb.Error, OSError) as exc:
            raise WarehouseUnavailable(
                f"cannot open the DuckDB warehouse {path}: {exc}"
                " (another process, e.g. `sluice serve` or the duckdb shell, may hold it open)"
            ) from exc
        self._db.execute("SET TimeZone = 'UTC'")
        # Commits write the write-ahead log only; the file is checkpointed when the log reaches
        # this size, and at `close`. A checkpoint rewrites the partly filled row groups of every
        # table a commit touched: once per load instead of once per chunk (1,000,000 bench
        # events: 8-10% faster end to end). A crash replays the log, so nothing is lost.
        self._db.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        meta = quote(META_SCHEMA)
        self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {meta}")
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {meta}.{quote(LOADS_TABLE)}"
            " (loader_id VARCHAR PRIMARY KEY,"
            " position BIGINT NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)"
        )
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {meta}.{quote(DISCARDS_TABLE)} (schema VARCHAR,"
            " table_name VARCHAR, column_name VARCHAR, row_id VARCHAR, value VARCHAR,"
            " reason VARCHAR, discarded_at TIMESTAMPTZ)"
        )
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {_CAPPED} (schema VARCHAR, table_name VARCHAR,"
            " event_text VARCHAR, events BIGINT NOT NULL, first_capped_at TIMESTAMPTZ,"
            " last_capped_at TIMESTAMPTZ, PRIMARY KEY (schema, table_name))"
        )

    def stage(self) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A connection for the columnar planner, and the database to keep its stage tables in.

        The database is in memory and attached to this one, so a load inserts from the stage
        tables without copying the rows out of DuckDB and back.
        """
        self._db.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {STAGE_DATABASE}")
        return self._db.cursor(), STAGE_DATABASE

    def columns(self, schema: str) -> dict[str, dict[str, ColumnType]]:
        rows = self._db.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            [schema],
        ).fetchall()
        tables: dict[str, dict[str, ColumnType]] = {}
        for table, column, sql_type in rows:
            tables.setdefault(table, {})[column] = column_type_of(sql_type)
        return tables

    def load(
        self,
        batches: Sequence[TableBatch],
        discards: Sequence[Discard],
        loader_id: str,
        position: int,
        capped: Sequence[CappedEvents] = (),
    ) -> None:
        db = self._db
        now = datetime.now(UTC)
        db.begin()
        try:
            existing: dict[str, dict[str, dict[str, ColumnType]]] = {}
            digested = set(self.columns(META_SCHEMA))
            for batch in batches:
                if batch.schema not in existing:
                    db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(batch.schema)}")
                    existing[batch.schema] = self.columns(batch.schema)
                self._load_batch(batch, existing[batch.schema].get(batch.table), digested)
            if discards:
                self._insert_discards(discards, now)
            if capped:
                db.executemany(
                    f"INSERT INTO {_CAPPED} VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (schema, table_name) DO UPDATE"
                    " SET events = events + excluded.events,"
                    " last_capped_at = excluded.last_capped_at",
                    [[c.schema, c.table, c.event_text, c.events, now, now] for c in capped],
                )
            db.execute(
                f"INSERT INTO {quote(META_SCHEMA)}.{quote(LOADS_TABLE)} VALUES (?, ?, ?)"
                " ON CONFLICT (loader_id) DO UPDATE SET position = excluded.position,"
                " loaded_at = excluded.loaded_at",
                [loader_id, position, now],
            )
            db.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                db.rollback()
            raise

    def _load_batch(
        self, batch: TableBatch, existing: dict[str, ColumnType] | None, digested: set[str]
    ) -> None:
        """Create or widen the table (and its id digests, `_digests`), then insert the rows."""
        db = self._db
        target = f"{quote(batch.schema)}.{quote(batch.table)}"
        if existing is None:
            definition = ", ".join(f"{quote(c)} {SQL_TYPES[t]}" for c, t in batch.columns.items())
            db.execute(f"CREATE TABLE {target} ({definition})")
        else:
            for column, column_type in batch.columns.items():
                if column not in existing:
                    db.execute(
                        f"ALTER TABLE {target} ADD COLUMN {quote(column)} {SQL_TYPES[column_type]}"
                    )
        digests = not batch.upsert and self._digests(target, batch, existing, digested)
        if not batch.row_count:
            return
        new = existing is None
        staged = batch.staged
        if staged is not None and staged.instance is self:
            self._insert(target, batch, f"({staged.query})", digests, new)
            return
        if staged is None:
            db.register(_BATCH_VIEW, arrow_table(batch))
        else:  # planned in another DuckDB: read as Arrow
            db.register(_BATCH_VIEW, staged.engine.sql(staged.query).to_arrow_table())
        try:
            self._insert(target, batch, _BATCH_VIEW, digests, new)
        finally:
            db.unregister(_BATCH_VIEW)

    def _digests(
        self,
        target: str,
        batch: TableBatch,
        existing: dict[str, ColumnType] | None,
        digested: set[str],
    ) -> bool:
        """Whether the table's ids are checked through digests (`_insert`): it holds at least
        `DIGESTS_FROM_ROWS` rows with the batch's. Makes, remakes or drops them to suit."""
        db = self._db
        name, ids = ids_name(batch), ids_table(batch)
        rows = 0 if existing is None else self._count(target)
        if rows + batch.row_count < DIGESTS_FROM_ROWS:
            if name in digested:  # the table shrank, or was dropped by hand, or is from before
                db.execute(f"DROP TABLE {ids}")
                digested.discard(name)
            return False
        if existing is None:  # a table dropped by hand may have left its digests behind
            db.execute(f"CREATE OR REPLACE TABLE {ids} (h UHUGEINT)")
        elif name not in digested or self._count(ids) != rows:
            # A table that grew past the threshold, or whose rows someone else inserted or
            # deleted (an import of old Segment tables, say): its digests are made from its ids.
            db.execute(f"CREATE OR REPLACE TABLE {ids} AS SELECT md5_number(id) AS h FROM {target}")
        digested.add(name)
        return True

    def _count(self, table: str) -> int:
        """A table's rows (DuckDB counts them from its metadata: ~1 ms for 10,000,000)."""
        ((rows,),) = self._db.execute(f"SELECT count(*) FROM {table}").fetchall()
        return int(rows)

    def _insert(
        self, target: str, batch: TableBatch, source: str, digests: bool, new: bool
    ) -> None:
        """Rows from `source` (a view or a subquery) into `target`, deduplicated on id.

        A large table's ids are checked against its id digests (`ids_table`): 16 bytes a row,
        where an anti-join on `id` itself would read every id the table holds, for every load.
        Only when some digest matches (a replay) are the ids compared, by that anti-join. A
        small table (`_digests`) has the anti-join straight away, a new one needs none.
        """
        db = self._db
        names = ", ".join(quote(c) for c in batch.columns)
        insert = f"INSERT INTO {target} ({names}) SELECT {names} FROM {source} AS b"
        unseen = f" WHERE NOT EXISTS (SELECT 1 FROM {target} AS x WHERE x.id = b.id)"
        if batch.upsert:
            db.execute(f"DELETE FROM {target} WHERE id IN (SELECT id FROM {source} AS b)")
            db.execute(insert)
            return
        if not digests:
            db.execute(insert if new else insert + unseen)
            return
        ids = ids_table(batch)
        db.execute(
            f"CREATE OR REPLACE TEMP TABLE {_DIGESTS} AS SELECT md5_number(b.id) AS h"
            f" FROM {source} AS b"
        )
        try:
            # The new digests are the IN list (hashed), the table's are probed: a scan of 16
            # bytes a row, where hashing the table's digests would grow with it.
            ((matched,),) = db.execute(  # fetched whole: DuckDB 2 refuses a half-read result
                f"SELECT count(*) FROM {ids} WHERE h IN (SELECT h FROM {_DIGESTS})"
            ).fetchall()
            if matched:
                db.execute(insert + unseen)
                db.execute(
                    f"INSERT INTO {ids} SELECT h FROM {_DIGESTS}"
                    f" WHERE h NOT IN (SELECT h FROM {ids})"
                )
            else:
                db.execute(insert)
                db.execute(f"INSERT INTO {ids} SELECT h FROM {_DIGESTS}")
        finally:
            db.execute(f"DROP TABLE IF EXISTS {_DIGESTS}")

    def _insert_discards(self, discards: Sequence[Discard], now: datetime) -> None:
        columns = [
            pa.array([getattr(d, f) for d in discards], type=pa.string())
            for f in ("schema", "table", "column", "row_id", "value", "reason")
        ]
        columns.append(pa.array([now] * len(discards), type=ARROW_TYPES[ColumnType.TIMESTAMP]))
        table = pa.Table.from_arrays(columns, names=[*_DISCARD_COLUMNS, "discarded_at"])
        self._db.register(_BATCH_VIEW, table)
        try:
            self._db.execute(f"INSERT INTO {_DISCARDS} SELECT * FROM {_BATCH_VIEW}")
        finally:
            self._db.unregister(_BATCH_VIEW)

    def position(self, loader_id: str) -> int:
        row = self._db.execute(
            f"SELECT position FROM {quote(META_SCHEMA)}.{quote(LOADS_TABLE)} WHERE loader_id = ?",
            [loader_id],
        ).fetchone()
        return 0 if row is None else int(row[0])

    def widen(self, schema: str, table: str, column: str, new_type: ColumnType) -> None:
        current = self.columns(schema).get(table)
        if current is None:
            raise SchemaChangeError(f"no table {schema}.{table} in {self.path}")
        check_widening(schema, table, column, current.get(column), new_type)
        try:
            self._db.execute(
                f"ALTER TABLE {quote(schema)}.{quote(table)} ALTER COLUMN {quote(column)}"
                f" SET DATA TYPE {SQL_TYPES[new_type]}"
            )
        except duckdb.Error as exc:
            raise WarehouseError(f"widening {schema}.{table}.{column} failed: {exc}") from exc

    def discards(self, limit: int = 100) -> list[Discard]:
        rows = self._db.execute(
            f"SELECT {', '.join(map(quote, _DISCARD_COLUMNS))} FROM {_DISCARDS}"
            " ORDER BY discarded_at DESC, rowid DESC LIMIT ?",
            [limit],
        ).fetchall()
        return [Discard(*row) for row in rows]

    def capped_events(self, schema: str | None = None) -> list[CappedEvents]:
        where, args = ("WHERE schema = ?", [schema]) if schema is not None else ("", [])
        rows = self._db.execute(
            f"SELECT schema, table_name, event_text, events FROM {_CAPPED} {where}"
            " ORDER BY schema, table_name",
            args,
        ).fetchall()
        return [CappedEvents(*row) for row in rows]

    def close(self) -> None:
        """Checkpoint (see `__init__`) and close; a failed checkpoint leaves the log, which the
        next open replays."""
        try:
            with contextlib.suppress(duckdb.Error):
                self._db.execute("CHECKPOINT")
        finally:
            self._db.close()
