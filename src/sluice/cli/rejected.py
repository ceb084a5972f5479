"""`sluice rejected`: the newest items the collector refused, with the reason and the item."""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.inspection import rejected_record
from sluice.spec.timestamps import format_ms


@app.command()
def rejected(
    limit: Annotated[int, typer.Option(help="How many of the newest rejected items.", min=1)] = 20,
    source: Annotated[str | None, typer.Option(help="Only this source id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show rejected items (oldest of them first): why each was refused, and what it was."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        found = list(reversed(store.rejections(limit, source)))
    finally:
        store.close()
    console = Console(highlight=False, soft_wrap=True)
    for item in found:
        if as_json:
            line = rejected_record(item)
            sys.stdout.buffer.write(msgspec.json.encode(line) + b"\n")
            continue
        console.print(
            f"[dim]#{item.id} {format_ms(item.received_at_ms)}[/] [bold red]{item.reason}[/] "
            f"{item.detail} [dim]source={item.source_id or '-'}[/]"
        )
        console.print(item.payload.decode("utf-8", "replace"), markup=False)
    sys.stdout.flush()
