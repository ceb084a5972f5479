"""DuckDB over the lake: a view per collection, so that Segment-style SQL runs unchanged.

Each collection becomes `<source>.<collection>` (`web.tracks`, `_default.order_completed`) and,
across sources, a plain `<collection>` (`SELECT count(*) FROM tracks`); discarded values are
`_sluice.discards`. Views read exactly the files a reader should (`LakeBackend.files`: those
the manifest commits, not those a compaction replaced) with `read_parquet(...,
hive_partitioning = true, union_by_name = true)`, so `day` and `hr` are columns and a column
added by a later file reads as NULL in earlier ones. `users` and `accounts` are written as each
load's latest row per id; their views keep the latest of all (by `uuid_ts`, the load's time).
"""

from __future__ import annotations

from collections import defaultdict

import duckdb

from sluice.lake.backend import LakeBackend
from sluice.lake.layout import META

LATEST_TABLES = frozenset({"users", "accounts"})


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(table: str, paths: list[str]) -> str:
    files = "[" + ", ".join(_literal(p) for p in paths) + "]"
    select = f"SELECT * FROM read_parquet({files}, hive_partitioning = true, union_by_name = true)"
    if table in LATEST_TABLES:
        select += " QUALIFY row_number() OVER (PARTITION BY id ORDER BY uuid_ts DESC) = 1"
    return select


def collections(backend: LakeBackend) -> dict[tuple[str, str], list[str]]:
    """(source schema, collection) -> the paths DuckDB reads for it."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in backend.files():
        out[(f.schema, f.table)].append(backend.storage.locate(f.path))
    return dict(out)


def connect(backend: LakeBackend) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's views (times shown in UTC)."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    found = collections(backend)
    across: dict[str, list[str]] = defaultdict(list)
    for (schema, table), paths in sorted(found.items()):
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        db.execute(f"CREATE VIEW {quote(schema)}.{quote(table)} AS {view_sql(table, paths)}")
        if schema != META:
            across[table].extend(paths)
    for table, paths in across.items():
        db.execute(f"CREATE VIEW main.{quote(table)} AS {view_sql(table, paths)}")
    return db
