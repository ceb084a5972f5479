"""DuckDB over the lake: a view per collection, so that Segment-style SQL runs unchanged.

Each collection becomes `<source>.<collection>` (`web.tracks`, `_default.order_completed`) and,
across sources, a plain `<collection>` (`SELECT count(*) FROM tracks`); discarded values are
`_sluice.discards`. Views read exactly the files a reader should (`LakeBackend.files`: those
the manifest commits, not those a compaction replaced) with `read_parquet(...,
hive_partitioning = true, union_by_name = true)`, so `day` and `hr` are columns and a column
added by a later file reads as NULL in earlier ones. `users` and `accounts` are written as each
load's latest row per id; their views keep the latest of all (by `uuid_ts`, the load's time).

A lake in a bucket is read from local copies (`ObjectLakeStorage.locate` downloads each file
once): `only` limits the views to the collections a statement names (`tables_in`), so a query
of `pages` does not download `tracks`, and files are fetched a few at a time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor

import duckdb

from sluice.lake.backend import LakeBackend
from sluice.lake.layout import META

LATEST_TABLES = frozenset({"users", "accounts"})
LOCATE_THREADS = 8  # downloads of a bucket's files at once (a round trip each)


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


def tables_in(sql: str) -> set[str] | None:
    """The table names a statement reads (unqualified: `web.tracks` gives `tracks`); None
    when DuckDB cannot tell (then every collection gets its view)."""
    try:
        return set(duckdb.get_table_names(sql))
    except duckdb.Error:
        return None


def collections(
    backend: LakeBackend, only: Collection[str] | None = None
) -> dict[tuple[str, str], list[str]]:
    """(source schema, collection) -> the paths DuckDB reads for it; with `only`, the
    collections of those names."""
    wanted = [f for f in backend.files() if only is None or f.table in only]
    with ThreadPoolExecutor(LOCATE_THREADS, thread_name_prefix="lake-locate") as pool:
        located = pool.map(backend.storage.locate, [f.path for f in wanted])
        out: dict[tuple[str, str], list[str]] = defaultdict(list)
        for f, path in zip(wanted, located, strict=True):
            out[(f.schema, f.table)].append(path)
    return dict(out)


def connect(backend: LakeBackend, only: Collection[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's views (times shown in UTC); with `only`, the views
    of the collections of those names."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    found = collections(backend, only)
    across: dict[str, list[str]] = defaultdict(list)
    for (schema, table), paths in sorted(found.items()):
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        db.execute(f"CREATE VIEW {quote(schema)}.{quote(table)} AS {view_sql(table, paths)}")
        if schema != META:
            across[table].extend(paths)
    for table, paths in across.items():
        db.execute(f"CREATE VIEW main.{quote(table)} AS {view_sql(table, paths)}")
    return db
