"""`sluice lake query|compact|status`: the Parquet data lake from the command line.

The worker loads a lake warehouse as any other (`sluice load` too); these commands read it with
DuckDB (a view per collection: `SELECT count(*) FROM tracks`), merge its small files by hand
and show what it holds. `--path` reads a lake directory without a store (a copy, say). A lake
in a bucket is read from local copies of its files (lake/objectstorage.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import msgspec
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.lake.backend import LakeBackend
from sluice.lake.compaction import compact
from sluice.lake.config import open_lake
from sluice.lake.query import connect, tables_in
from sluice.lake.storage import LocalStorage
from sluice.warehouse.base import WarehouseError, WarehouseNotFound
from sluice.warehouse.factory import lake_path, parse_warehouse_config, warehouse_bodies

lake_app = typer.Typer(help="The Parquet data lake: query it with DuckDB, compact it, see it.")
app.add_typer(lake_app, name="lake")

LakeOption = Annotated[
    str | None, typer.Option("--warehouse", help="The lake's warehouse id (default: the only one).")
]
PathOption = Annotated[
    Path | None,
    typer.Option("--path", help="A lake directory to read, instead of the workspace's lake."),
]
_encode = msgspec.json.Encoder(enc_hook=str).encode


def open_cli_lake(
    warehouse: str | None, data_dir: Path | None, database_url: str | None, path: Path | None
) -> LakeBackend:
    """The lake a command works on: `--path`, else the workspace's lake warehouse."""
    if path is not None:
        if not path.is_dir():
            raise WarehouseNotFound(f"no lake directory at {path}")
        return LakeBackend(LocalStorage(path))
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        configs = [parse_warehouse_config(body) for body in warehouse_bodies(store)]
    finally:
        store.close()
    lakes = [c for c in configs if c.type == "lake" and warehouse in (None, c.id)]
    if not lakes:
        wanted = f" {warehouse!r}" if warehouse else ""
        raise WarehouseNotFound(
            f"no lake warehouse{wanted} in the workspace: add one of type `lake` (docs/lake.md)"
        )
    if len(lakes) > 1:
        ids = ", ".join(c.id for c in lakes)
        raise WarehouseNotFound(
            f"the workspace has several lakes ({ids}): pick one with --warehouse"
        )
    config = lakes[0]
    return open_lake(config.id, lake_path(config, settings.data_dir), config.settings)


@lake_app.command("query")
def query(
    sql: Annotated[str, typer.Argument(help="SQL for DuckDB; collections are views (tracks).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
    warehouse: LakeOption = None,
    path: PathOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Run SQL over the lake with DuckDB: `sluice lake query "SELECT count(*) FROM tracks"`."""
    backend = open_cli_lake(warehouse, data_dir, database_url, path)
    try:
        with connect(backend, tables_in(sql)) as db:
            result = db.execute(sql)
            names = [d[0] for d in result.description or ()]
            rows = result.fetchall()
    except duckdb.Error as exc:
        typer.echo(f"sluice: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        for row in rows:
            typer.echo(_encode(dict(zip(names, row, strict=True))).decode())
        return
    table = Table(*names, show_lines=False)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console = Console(highlight=False)
    console.print(table)
    console.print(f"{len(rows):,} row{'s' if len(rows) != 1 else ''}")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


@lake_app.command("compact")
def compact_lake(
    warehouse: LakeOption = None,
    path: PathOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Merge each partition's files into one (loads also do it past `compact_files` files)."""
    backend = open_cli_lake(warehouse, data_dir, database_url, path)
    report = compact(backend.storage, backend.manifest.position)
    typer.echo(
        f"{report.partitions} partitions compacted: {report.merged} files merged into"
        f" {len(report.written)} ({report.rows:,} rows), {report.removed} files removed"
    )


@lake_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
    warehouse: LakeOption = None,
    path: PathOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """The lake's position and, per collection, its files, partitions and rows."""
    backend = open_cli_lake(warehouse, data_dir, database_url, path)
    summary: dict[str, dict[str, int]] = {}
    for f in backend.files():
        entry = summary.setdefault(f"{f.schema}.{f.table}", {"files": 0, "rows": 0})
        entry["files"] += 1
        try:
            entry["rows"] += pq.read_metadata(backend.storage.locate(f.path)).num_rows
        except OSError as exc:
            raise WarehouseError(f"cannot read {f.path}: {exc}") from exc
    manifest = backend.manifest
    if as_json:
        doc = {"position": manifest.position, "loaded_at": manifest.loaded_at}
        typer.echo(_encode({**doc, "collections": summary}).decode())
        return
    console = Console(highlight=False)
    console.print(
        f"position {manifest.position:,} (last load {manifest.loaded_at or 'never'})"
        f" in {backend.storage!r}"
    )
    table = Table("collection", "files", "rows")
    for name, entry in sorted(summary.items()):
        table.add_row(name, f"{entry['files']:,}", f"{entry['rows']:,}")
    console.print(table)
