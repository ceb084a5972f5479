"""`sluice load` and `sluice warehouse widen|discards`: warehouse loads and schema care by hand.

The worker loads every `warehouse_interval_s`; `sluice load` does it now (e.g. before a query, or
in a cron job with automatic loads off). A value that did not fit its column's type is kept in
`_sluice.discards`: `sluice warehouse discards` lists them, and `sluice warehouse widen` changes
a column's type (integer → float, any → varchar) so that later values fit.
"""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.warehouse.base import ColumnType, SchemaChangeError
from sluice.warehouse.factory import find_warehouse, open_backend, warehouse_bodies
from sluice.warehouse.loader import LoadReport, WarehouseLoader
from sluice.warehouse.naming import Namer

warehouse_app = typer.Typer(help="Warehouse schema: widen a column, list discarded values.")
app.add_typer(warehouse_app, name="warehouse")

WarehouseOption = Annotated[
    str | None,
    typer.Option("--warehouse", help="Warehouse id (default: the only one, or `default`)."),
]


@app.command("load")
def load(
    warehouse: Annotated[
        str | None, typer.Option("--warehouse", help="Only this warehouse id (default: all).")
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Load the event log into the warehouses now and print the rows written per table."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        if warehouse is None:
            bodies = warehouse_bodies(store)
        else:
            bodies = [msgspec.json.encode(find_warehouse(store, warehouse))]
        reports = [WarehouseLoader(settings, store, body).load_once() for body in bodies]
    finally:
        store.close()
    console = Console(highlight=False)
    for report in reports:
        _print_report(console, report)


def _print_report(console: Console, report: LoadReport) -> None:
    extras = [
        f"{n} {what}"
        for n, what in (
            (report.skipped, "skipped"),
            (report.duplicates, "duplicates"),
            (report.discards, "discarded values (`sluice warehouse discards`)"),
        )
        if n
    ]
    console.print(
        f"[bold]{report.warehouse_id}[/]: {report.events} events read (log position"
        f" {report.start_position} → {report.position}), {report.total_rows} rows"
        + "".join(f", {e}" for e in extras)
        + f" in {report.seconds:.1f} s",
        soft_wrap=True,
    )
    if report.rows:
        new: dict[str, int] = {}
        for schema, name, _column, _type in report.new_columns:
            new[f"{schema}.{name}"] = new.get(f"{schema}.{name}", 0) + 1
        table = Table("table", "rows", "new columns")
        for name, rows in sorted(report.rows.items()):
            table.add_row(name, str(rows), str(new.get(name, 0)))
        console.print(table)


@warehouse_app.command("widen")
def widen(
    table: Annotated[str, typer.Argument(help="Table name, e.g. order_completed.")],
    column: Annotated[str, typer.Argument(help="Column name, e.g. total.")],
    new_type: Annotated[ColumnType, typer.Argument(metavar="TYPE", help="float or varchar.")],
    schema: Annotated[
        str | None,
        typer.Option(help="Schema (the source's snake_case id); needed with several sources."),
    ] = None,
    warehouse: WarehouseOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Change a column's type so that later values fit (integer → float, any type → varchar)."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        config = find_warehouse(store, warehouse)
        if schema is None:
            sources = list(config.sources) or [s.id for s in store.sources()]
            if len(sources) != 1:
                which = ", ".join(sources) if sources else "none"
                raise SchemaChangeError(
                    f"warehouse {config.id!r} loads {len(sources)} sources ({which}):"
                    " name the schema with --schema"
                )
            schema = sources[0]
    finally:
        store.close()
    backend = open_backend(config, settings.data_dir)
    try:
        schema = Namer(backend.max_identifier_length).schema(schema)
        backend.widen(schema, table, column, new_type)
    finally:
        backend.close()
    typer.echo(f"{config.id}: {schema}.{table}.{column} is now {new_type.value}")


@warehouse_app.command("discards")
def discards(
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    warehouse: WarehouseOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Values that did not fit their column's type (the rows loaded without them)."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        config = find_warehouse(store, warehouse)
    finally:
        store.close()
    backend = open_backend(config, settings.data_dir)
    try:
        found = backend.discards(limit)
    finally:
        backend.close()
    if as_json:
        for d in found:
            sys.stdout.buffer.write(msgspec.json.encode(d) + b"\n")
        return
    if not found:
        typer.echo(f"{config.id}: no discarded values")
        return
    table = Table("table", "column", "row id", "value", "reason", title=f"{config.id}: discards")
    for d in found:
        table.add_row(f"{d.schema}.{d.table}", d.column, d.row_id, d.value, d.reason)
    Console(highlight=False).print(table)
