"""`sluice status`: what came in and what happened to it, per source."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from

MAIN_COUNTERS = ("received", "stored", "duplicates", "throttled", "unauthorized")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Counters as one JSON object.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Counts per source: received, stored, duplicates, rejected by reason."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        counters = store.counters()
        last_seq = store.last_seq()
    finally:
        store.close()
    by_source: dict[str, dict[str, int]] = {}
    for (source, name), value in counters.items():
        by_source.setdefault(source or "(no source)", {})[name] = value
    if as_json:
        typer.echo(msgspec.json.encode({"sources": by_source, "log_end": last_seq}).decode())
        return
    console = Console(highlight=False)
    table = Table(title=f"Sluice status  (log position {last_seq})")
    table.add_column("source")
    for name in MAIN_COUNTERS:
        table.add_column(name, justify="right")
    table.add_column("rejected (by reason)")
    for source, values in sorted(by_source.items()):
        rejected = {
            name.partition(":")[2]: value
            for name, value in values.items()
            if name.startswith("rejected:")
        }
        table.add_row(
            source,
            *(str(values.get(name, 0)) for name in MAIN_COUNTERS),
            ", ".join(f"{reason}={n}" for reason, n in sorted(rejected.items())) or "-",
        )
    console.print(table)
