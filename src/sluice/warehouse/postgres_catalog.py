"""The PostgreSQL warehouse's tables and columns: Segment's types as PostgreSQL's, the catalog
read back, tables created and columns added, and the advisory locks that order it all.

Apart from postgres.py (the load: one transaction, COPY, staging, positions) because this is the
schema side every load and `widen` share. A table's lock is taken before its catalog is read
again and changed, all locks of a load in one global order (`schema_key`, `table_key`), so
concurrent loaders never wait on each other in a cycle (postgres.py's docstring).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from sluice.warehouse.base import ColumnType, TableBatch

Cursor = psycopg.Cursor[tuple[Any, ...]]

# Segment's types as PostgreSQL types. `text`, not `varchar(512)`: PostgreSQL stores both the same
# way and a length limit only adds a check; 512 is Redshift's limit, and truncating would lose data.
PG_TYPES: Mapping[ColumnType, str] = {
    ColumnType.TIMESTAMP: "timestamptz",
    ColumnType.INTEGER: "bigint",
    ColumnType.FLOAT: "double precision",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.VARCHAR: "text",
}

# What information_schema's `data_type` says for the types above.
DATA_TYPES: Mapping[ColumnType, str] = {
    ColumnType.TIMESTAMP: "timestamp with time zone",
    ColumnType.INTEGER: "bigint",
    ColumnType.FLOAT: "double precision",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.VARCHAR: "text",
}

# information_schema's `data_type` back to Segment's types. Columns of other types (added by
# hand) read as varchar.
FROM_PG: Mapping[str, ColumnType] = {
    "timestamp with time zone": ColumnType.TIMESTAMP,
    "timestamp without time zone": ColumnType.TIMESTAMP,
    "date": ColumnType.TIMESTAMP,
    "bigint": ColumnType.INTEGER,
    "integer": ColumnType.INTEGER,
    "smallint": ColumnType.INTEGER,
    "double precision": ColumnType.FLOAT,
    "real": ColumnType.FLOAT,
    "numeric": ColumnType.FLOAT,
    "boolean": ColumnType.BOOLEAN,
}

# First key of the two-key advisory locks on tables and schemas.
_TABLE_LOCK_SPACE = 0x51C3
_LOCK = "SELECT pg_advisory_xact_lock(%s, %s)"

_COLUMNS_SQL = """
SELECT table_schema, table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = ANY(%s)
ORDER BY table_schema, table_name, ordinal_position
"""


def lock_table(cur: Cursor, schema: str, table: str) -> None:
    cur.execute(_LOCK, (_TABLE_LOCK_SPACE, lock_key(schema, table)))


def lock_key(schema: str, table: str) -> int:
    """The second key of a table's advisory lock (a schema's own lock uses table "")."""
    # crc32 rather than hashtext: the order locks are taken in must be known here, before asking.
    return zlib.crc32(f"{schema}\x00{table}".encode()) - 2**31


def schema_key(schema: str) -> tuple[int, str]:
    return lock_key(schema, ""), schema


def table_key(batch: TableBatch) -> tuple[int, str, str]:
    return lock_key(batch.schema, batch.table), batch.schema, batch.table


def read_columns(cur: Cursor, schemas: Iterable[str]) -> dict[str, dict[str, dict[str, str]]]:
    """`{schema: {table: {column: data_type}}}` as information_schema names the types."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for schema, table, column, data_type in cur.execute(_COLUMNS_SQL, (list(schemas),)):
        out.setdefault(schema, {}).setdefault(table, {})[column] = data_type
    return out


def ensure_table(cur: Cursor, batch: TableBatch) -> dict[str, str]:
    """Create the table or add its missing columns; the caller holds the table's lock.

    The catalog is read again under the lock: another loader may have just done it.
    """
    have = read_columns(cur, [batch.schema]).get(batch.schema, {}).get(batch.table)
    target = sql.Identifier(batch.schema, batch.table)
    if have is None:
        # Byte order for the key: dedupe is equality, and "C" compares faster than any locale.
        defs = [sql.SQL('id text COLLATE "C" PRIMARY KEY')] + [
            sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(PG_TYPES[t]))
            for n, t in batch.columns.items()
            if n != "id"
        ]
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(defs)))
        have = {"id": "text"}
        added = [n for n in batch.columns if n != "id"]
    else:
        added = [n for n in batch.columns if n not in have]
        if added:
            cur.execute(
                sql.SQL("ALTER TABLE {} {}").format(
                    target,
                    sql.SQL(", ").join(
                        sql.SQL("ADD COLUMN IF NOT EXISTS {} {}").format(
                            sql.Identifier(n), sql.SQL(PG_TYPES[batch.columns[n]])
                        )
                        for n in added
                    ),
                )
            )
    if "received_at" in added:
        # Segment's sort key, as a block-range index: a sort key's zone maps in PostgreSQL.
        # Rows arrive in about received_at order, so each range of pages holds a narrow span
        # of it. Loads were 12-20% slower with a B-tree (docs/warehouse-postgres.md). Unnamed:
        # PostgreSQL picks a free name that fits in 63 bytes.
        cur.execute(
            sql.SQL("CREATE INDEX ON {} USING brin (received_at) WITH (autosummarize = on)").format(
                target
            )
        )
    return {**have, **{n: DATA_TYPES[batch.columns[n]] for n in added}}
