"""Warehouses: how far each has loaded, its tables and rows, discarded values, the event names
that have no table of their own (their source had all its `max_event_tables`: their events are
in `tracks` only, and someone looking for their table must learn why it is not there), and
widening a column (the manual type change `sluice warehouse widen` makes).

A DuckDB warehouse is read with a read-only connection, the way docs/warehouse.md tells people
to read it between loads: the page never creates anything in the file and never holds its write
lock. While a load holds the file, the page says so instead of waiting. Other backends are
read through the warehouse protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.config import Settings
from sluice.store.base import EventStore
from sluice.ui.site import Site, redirect
from sluice.warehouse.base import (
    CAPPED_TABLE,
    DISCARDS_TABLE,
    LOADS_TABLE,
    META_SCHEMA,
    WIDENINGS,
    CappedEvents,
    ColumnType,
    Discard,
    WarehouseError,
)
from sluice.warehouse.factory import (
    WarehouseConfig,
    duckdb_path,
    max_event_tables,
    open_backend,
    parse_warehouse_config,
    warehouse_bodies,
)
from sluice.warehouse.naming import STANDARD_TABLES, Namer
from sluice.warehouse.stats import warehouse_stats

SHOWN_DISCARDS = 20
SHOWN_CAPPED = 20  # capped names shown per schema: the busiest, or those matching a search
MAX_SEARCH = 200
WIDEN_TO = sorted({new.value for _, new in WIDENINGS})


@dataclass(slots=True)
class Table:
    schema: str
    name: str
    rows: int | None  # DuckDB's estimate; None when the backend does not say
    columns: dict[str, str]


@dataclass(slots=True)
class WarehouseView:
    id: str
    type: str
    sources: tuple[str, ...]
    position: int = 0
    lag: int = 0
    loaded_at: str = ""
    discard_count: int = 0
    discards: list[Discard] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    error: str = ""
    max_event_tables: int = 0
    table_names: set[tuple[str, str]] = field(default_factory=set)  # (schema, table), all
    capped: list[CappedEvents] = field(default_factory=list)  # names with no table of their own
    capped_schemas: list[CappedSchema] = field(default_factory=list)  # what the page shows

    def event_tables(self, schema: str) -> int:
        return sum(1 for s, t in self.table_names if s == schema and t not in STANDARD_TABLES)

    def capped_table(self, schema: str, table: str) -> CappedEvents | None:
        """The record of an event table's name capped in this schema, if it was."""
        for c in self.capped:
            if c.schema == schema and c.table == table:
                return c
        return None


@dataclass(slots=True)
class CappedSchema:
    """One schema's capped event names as the page shows them."""

    schema: str
    event_tables: int
    names: int
    events: int
    matching: int  # names matching the search (all of them without one)
    shown: list[CappedEvents]


def capped_schemas(view: WarehouseView, search: str = "") -> list[CappedSchema]:
    """Per schema, its capped names with most events first, or those whose name or table
    contains `search` (any case): there may be thousands, and one is looked for by name."""
    by_schema: dict[str, list[CappedEvents]] = {}
    for c in view.capped:
        by_schema.setdefault(c.schema, []).append(c)
    needle = search.strip().casefold()
    groups = []
    for schema, names in sorted(by_schema.items()):
        names.sort(key=lambda c: (-c.events, c.event_text))
        matching = [
            c for c in names if not needle or needle in c.event_text.casefold() or needle in c.table
        ]
        groups.append(
            CappedSchema(
                schema,
                view.event_tables(schema),
                len(names),
                sum(c.events for c in names),
                len(matching),
                matching[:SHOWN_CAPPED],
            )
        )
    return groups


def _duckdb_view(
    view: WarehouseView, config: WarehouseConfig, settings: Settings, details: bool
) -> None:
    import duckdb

    path = duckdb_path(config, settings.data_dir)
    if not path.exists():
        view.error = "Nothing loaded yet."
        return
    try:
        db = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        view.error = f"The warehouse is busy (a load holds the file); reload in a moment. ({exc})"
        return
    try:
        db.execute("SET TimeZone = 'UTC'")
        meta = f'"{META_SCHEMA}"'
        row = db.execute(
            "SELECT position, strftime(loaded_at, '%Y-%m-%d %H:%M:%S UTC')"
            f' FROM {meta}."{LOADS_TABLE}" WHERE loader_id = ?',
            [config.id],
        ).fetchone()
        if row is not None:
            view.position, view.loaded_at = int(row[0]), str(row[1])
        tables = db.execute(
            "SELECT schema_name, table_name, estimated_size FROM duckdb_tables()"
            " WHERE schema_name <> ?",
            [META_SCHEMA],
        ).fetchall()
        view.table_names = {(s, t) for s, t, _ in tables}
        if db.execute(
            "SELECT 1 FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [META_SCHEMA, CAPPED_TABLE],
        ).fetchall():  # a file no load has opened since capping came has none
            view.capped = [
                CappedEvents(*r)
                for r in db.execute(
                    "SELECT schema, table_name, event_text, events"
                    f' FROM {meta}."{CAPPED_TABLE}" ORDER BY schema, table_name'
                ).fetchall()
            ]
        if not details:
            return
        count = db.execute(f'SELECT count(*) FROM {meta}."{DISCARDS_TABLE}"').fetchone()
        view.discard_count = int(count[0]) if count else 0
        view.discards = [
            Discard(*r)
            for r in db.execute(
                "SELECT schema, table_name, column_name, row_id, value, reason"
                f' FROM {meta}."{DISCARDS_TABLE}" ORDER BY discarded_at DESC, rowid DESC LIMIT ?',
                [SHOWN_DISCARDS],
            ).fetchall()
        ]
        sizes = {(s, t): int(n) for s, t, n in tables}
        columns: dict[tuple[str, str], dict[str, str]] = {}
        for schema, table, column, sql_type in db.execute(
            "SELECT table_schema, table_name, column_name, data_type"
            " FROM information_schema.columns WHERE table_schema <> ?"
            " ORDER BY table_schema, table_name, ordinal_position",
            [META_SCHEMA],
        ).fetchall():
            columns.setdefault((schema, table), {})[column] = str(sql_type).lower()
        view.tables = [
            Table(schema, table, sizes.get((schema, table)), cols)
            for (schema, table), cols in sorted(columns.items())
        ]
    except duckdb.Error as exc:
        view.error = f"Cannot read the warehouse: {exc}"
    finally:
        db.close()


def _protocol_view(
    view: WarehouseView, config: WarehouseConfig, settings: Settings, store: EventStore
) -> None:
    stats = warehouse_stats(settings, store).get(config.id, {})
    if "error" in stats:
        view.error = str(stats["error"])
        return
    view.position, view.discard_count = stats.get("position", 0), stats.get("discards", 0)
    try:
        backend = open_backend(config, settings.data_dir)
    except WarehouseError as exc:
        view.error = str(exc)
        return
    try:
        namer = Namer(backend.max_identifier_length)
        sources = config.sources or tuple(s.id for s in store.sources())
        for source in sources:
            schema = namer.schema(source)
            for table, cols in sorted(backend.columns(schema).items()):
                view.tables.append(
                    Table(schema, table, None, {c: t.value for c, t in cols.items()})
                )
                view.table_names.add((schema, table))
        view.discards = backend.discards(SHOWN_DISCARDS)
        view.capped = backend.capped_events()
    finally:
        backend.close()


def warehouse_views(
    settings: Settings, store: EventStore, *, details: bool = True
) -> list[WarehouseView]:
    """Every warehouse of the workspace; `details` adds tables, columns and discards."""
    end = store.last_seq()
    views = []
    for body in warehouse_bodies(store):
        try:
            config = parse_warehouse_config(body)
        except WarehouseError as exc:
            views.append(WarehouseView("(unreadable)", "", (), error=str(exc)))
            continue
        view = WarehouseView(config.id, config.type, config.sources)
        view.max_event_tables = max_event_tables(config, settings.warehouse_max_event_tables)
        if config.type == "duckdb":
            _duckdb_view(view, config, settings, details)
        else:
            _protocol_view(view, config, settings, store)
        view.lag = max(end - view.position, 0)
        views.append(view)
    return views


def warehouse_positions(settings: Settings, store: EventStore) -> dict[str, int | str]:
    """Each warehouse's load position, or why it cannot be read now (for event lookups)."""
    return {
        view.id: view.error if view.error and not view.position else view.position
        for view in warehouse_views(settings, store, details=False)
    }


def widen(settings: Settings, store: EventStore, form: dict[str, str], warehouse_id: str) -> str:
    """Change a column's type, as `sluice warehouse widen` does; returns what was done."""
    configs = {c.id: c for c in map(parse_warehouse_config, warehouse_bodies(store))}
    config = configs.get(warehouse_id)
    if config is None:
        raise WarehouseError(f"no warehouse {warehouse_id!r}")
    schema, _, table = form.get("table", "").partition(".")
    column, new_type = form.get("column", "").strip(), form.get("type", "")
    if not schema or not table or not column:
        raise WarehouseError("choose a table and name a column")
    try:
        target = ColumnType(new_type)
    except ValueError:
        raise WarehouseError(f"{new_type!r} is not a column type") from None
    backend = open_backend(config, settings.data_dir)
    try:
        backend.widen(schema, table, column, target)
    finally:
        backend.close()
    return f"{schema}.{table}.{column} is now {target.value}."


def routes(site: Site) -> list[Route]:
    async def page(request: Request) -> Response:
        search = request.query_params.get("capped", "").strip()[:MAX_SEARCH]
        views = await site.run(warehouse_views, site.settings, site.store)
        for view in views:
            view.capped_schemas = capped_schemas(view, search)
        return site.render(
            request, "warehouses.html", views=views, widen_to=WIDEN_TO, search=search
        )

    async def widen_column(request: Request) -> Response:
        warehouse_id = request.path_params["warehouse_id"]
        form: dict[str, Any] = {k: str(v) for k, v in (await request.form()).items()}
        try:
            done = await site.run(widen, site.settings, site.store, form, warehouse_id)
        except WarehouseError as exc:
            return redirect("/warehouses", f"Not changed: {exc}")
        return redirect("/warehouses", done)

    return [
        Route("/warehouses", page, methods=["GET"]),
        Route("/warehouses/{warehouse_id}/widen", widen_column, methods=["POST"]),
    ]
