"""`sluice parked list|retry`: events a destination will not get until an operator says so."""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.inspection import parked_record

parked_app = typer.Typer(help="Events parked after a permanent error or the retry window.")
app.add_typer(parked_app, name="parked")

DestinationOption = Annotated[str | None, typer.Option(help="Only this destination id.")]


@parked_app.command("list")
def list_parked(
    destination: DestinationOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Parked events per destination: why, and the request and response that failed."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        found = store.parked(destination, ("parked", "retry_requested"), limit)
    finally:
        store.close()
    console = Console(highlight=False, soft_wrap=True)
    for p in found:
        record = parked_record(p)
        if as_json:
            sys.stdout.buffer.write(msgspec.json.encode(record) + b"\n")
            continue
        console.print(
            f"[dim]#{p.id} {record['parkedAt']}[/] [bold]{p.destination}[/] {p.message_id} "
            f"[red]{p.reason}[/] attempts={p.attempts}"
            + ("" if p.state == "parked" else f" [yellow]({p.state})[/]")
        )
        request, response = record["request"], record["response"]
        if request:
            console.print(f"  → {request.get('method')} {request.get('url')}", markup=False)
        if response:
            status = response.get("status") or response.get("error")
            console.print(f"  ← {status} {str(response.get('body', ''))[:200]}", markup=False)
    if not found and not as_json:
        console.print("No parked events.")
    sys.stdout.flush()


@parked_app.command("retry")
def retry_parked(
    destination: DestinationOption = None,
    ids: Annotated[list[int] | None, typer.Argument(help="Parked ids (default: all).")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Send parked events again (the running delivery worker picks them up within a second)."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        count = store.request_parked_retry(destination, ids or ())
    finally:
        store.close()
    typer.echo(f"{count} parked event(s) queued for another attempt.")
