"""`sluice violations`: what the tracking plans found, per source, event, field and type."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.protocols.counters import BLOCKED, violation_counts


@app.command()
def violations(
    source: Annotated[str | None, typer.Option(help="Only this source id.")] = None,
    event: Annotated[str | None, typer.Option(help="Only this event (name or call type).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Tracking plan violations counted since the start, most frequent first; blocked events
    are in `sluice rejected` (reason tracking_plan_blocked)."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        counters = store.counters()
    finally:
        store.close()
    rows = violation_counts(counters, source, event)
    if as_json:
        for row in rows:
            typer.echo(msgspec.json.encode(row._asdict()).decode())
        return
    console = Console(highlight=False)
    table = Table(title="Tracking plan violations")
    for column in ("source", "event", "field", "type"):
        table.add_column(column)
    table.add_column("count", justify="right")
    for row in rows:
        table.add_row(row.source_id, row.event, row.field, row.type, str(row.value))
    console.print(table)
    blocked = {s: n for (s, name), n in counters.items() if name == BLOCKED}
    for source_id, n in sorted(blocked.items()):
        if source is None or source_id == source:
            console.print(
                f"source {source_id}: {n} events blocked — `sluice rejected --source {source_id}`"
            )
