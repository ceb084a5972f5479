"""`sluice load` and `sluice warehouse [widen|discards|capped]`: loads and schema care by hand.

The worker loads every `warehouse_interval_s`; `sluice load` does it now (e.g. before a query, or
in a cron job with automatic loads off). A value that did not fit its column's type is kept in
`_sluice.discards`: `sluice warehouse discards` lists them, and `sluice warehouse widen` changes
a column's type (integer → float, any → varchar) so that later values fit. An event name that
came after its source had all the event tables it may have (`max_event_tables`) has no table:
`sluice warehouse` says so per schema, with the busiest such names, and `sluice warehouse capped`
lists them all, so that nobody looks for a table that was never made.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.config import Settings
from sluice.store.base import EventStore
from sluice.warehouse.base import CappedEvents, ColumnType, SchemaChangeError, WarehouseBackend
from sluice.warehouse.factory import (
    WarehouseConfig,
    duckdb_path,
    find_warehouse,
    max_event_tables,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)
from sluice.warehouse.loader import LoadReport, WarehouseLoader
from sluice.warehouse.naming import STANDARD_TABLES, Namer
from sluice.workspace.model import MAX_EVENT_TABLES

T = TypeVar("T")

warehouse_app = typer.Typer(
    help="Each warehouse's event tables and capped event names; widen a column, list discards."
)
app.add_typer(warehouse_app, name="warehouse")
SHOWN_CAPPED = 5  # capped names `sluice warehouse` shows per schema, those with most events
CAP_ENV = "SLUICE_WAREHOUSE_MAX_EVENT_TABLES"

WarehouseOption = Annotated[
    str | None,
    typer.Option("--warehouse", help="Warehouse id (default: the only one, or `default`)."),
]
EachWarehouseOption = Annotated[
    str | None, typer.Option("--warehouse", help="Only this warehouse id (default: all).")
]


@app.command("load")
def load(
    warehouse: EachWarehouseOption = None,
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
    if report.capped:
        events = sum(report.capped.values())
        console.print(
            f"{events} events of {len(report.capped)} event names went to tracks only: their"
            " source has all the event tables it may have (`sluice warehouse` says more)",
            soft_wrap=True,
        )


@warehouse_app.callback(invoke_without_command=True)
def overview(
    ctx: typer.Context,
    warehouse: EachWarehouseOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Per warehouse and source schema: its event tables, and the event names past the cap."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        if warehouse is None:
            configs = [parse_warehouse_config(body) for body in warehouse_bodies(store)]
        else:
            configs = [find_warehouse(store, warehouse)]
        schemas = {config.id: _source_ids(store, config) for config in configs}
    finally:
        store.close()
    for config in configs:
        if config.type == "duckdb" and not duckdb_path(config, settings.data_dir).exists():
            typer.echo(f"{config.id} (duckdb): nothing loaded yet")
            continue
        backend = open_backend(config, settings.data_dir)
        try:
            lines = _overview(config, backend, settings, schemas[config.id])
        finally:
            backend.close()
        for line in lines:
            typer.echo(line)


def _source_ids(store: EventStore, config: WarehouseConfig) -> list[str]:
    return list(config.sources) or [source.id for source in store.sources()]


def _overview(
    config: WarehouseConfig, backend: WarehouseBackend, settings: Settings, sources: list[str]
) -> list[str]:
    """What `sluice warehouse` prints of one warehouse."""
    cap = max_event_tables(config, settings.warehouse_max_event_tables)
    namer = Namer(backend.max_identifier_length)
    capped: dict[str, list[CappedEvents]] = {}
    for c in backend.capped_events():
        capped.setdefault(c.schema, []).append(c)
    schemas = dict.fromkeys([namer.schema(source) for source in sources] + sorted(capped))
    lines = [
        f"{config.id} ({config.type}): at most {cap:,} event tables per source ({MAX_EVENT_TABLES})"
    ]
    for schema in schemas:
        tables = sum(1 for name in backend.columns(schema) if name not in STANDARD_TABLES)
        names = sorted(capped.get(schema, ()), key=lambda c: (-c.events, c.event_text))
        if not names:
            lines.append(f"  {schema}: {tables:,} event tables")
            continue
        events = sum(c.events for c in names)
        lines.append(
            f"  {schema}: {tables:,} event tables; {len(names):,} event names have no table of"
            f" their own (capped at {cap:,} event tables): their {events:,} events are in"
            f" {schema}.tracks only"
        )
        width = max(len(c.event_text) for c in names[:SHOWN_CAPPED])
        for c in names[:SHOWN_CAPPED]:
            lines.append(f"    {c.event_text:<{width}}  {c.events:>9,} events  (table {c.table})")
        if len(names) > SHOWN_CAPPED:
            lines.append(
                f"    ... {len(names) - SHOWN_CAPPED:,} more:"
                f" `sluice warehouse capped --warehouse {config.id} --schema {schema}`"
            )
        if tables < cap:  # the cap was raised since
            lines.append(
                f"    (the schema has room for {cap - tables:,} more event tables now: the next"
                " events of these names get tables, first come first served)"
            )
    if capped:
        where = (
            f"the warehouse's settings.{MAX_EVENT_TABLES}"
            if MAX_EVENT_TABLES in config.settings
            else f"{CAP_ENV} (or the warehouse's settings.{MAX_EVENT_TABLES})"
        )
        lines.append(
            f"  Why: a source makes at most {cap:,} event tables, so that event names holding"
            " ids or dates do not make tables without end. To give more names their tables,"
            f" raise {where}: they get them from the next load on, and their earlier events"
            " stay in tracks only."
        )
    return lines


def _read_backend(
    data_dir: Path | None,
    database_url: str | None,
    warehouse: str | None,
    read: Callable[[WarehouseBackend], T],
) -> tuple[Settings, WarehouseConfig, T]:
    """`read` on the chosen warehouse's backend, opened for that read only."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    try:
        config = find_warehouse(store, warehouse)
    finally:
        store.close()
    backend = open_backend(config, settings.data_dir)
    try:
        return settings, config, read(backend)
    finally:
        backend.close()


@warehouse_app.command("capped")
def capped_names(
    schema: Annotated[str | None, typer.Option(help="Only this schema.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    warehouse: WarehouseOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Event names that have no table (past max_event_tables): their events are in tracks only."""
    settings, config, found = _read_backend(
        data_dir, database_url, warehouse, lambda b: b.capped_events(schema)
    )
    found.sort(key=lambda c: (c.schema, -c.events, c.event_text))
    if as_json:
        for c in found:
            record = {"schema": c.schema, "event": c.event_text, "table": c.table}
            sys.stdout.buffer.write(msgspec.json.encode({**record, "events": c.events}) + b"\n")
        return
    if not found:
        typer.echo(f"{config.id}: every event name has its table")
        return
    cap = max_event_tables(config, settings.warehouse_max_event_tables)
    table = Table(
        "schema",
        "event name",
        "events in tracks only",
        "its table would be",
        title=f"{config.id}: event names with no table ({MAX_EVENT_TABLES} is {cap:,})",
    )
    for c in found:
        table.add_row(c.schema, c.event_text, f"{c.events:,}", c.table)
    Console(highlight=False).print(table)


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
    _, config, found = _read_backend(data_dir, database_url, warehouse, lambda b: b.discards(limit))
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
