"""`sluice retrying list|retry|park`: events whose delivery failed and will be tried again.

A failed event sits in its destination's retry set from its first failure until it is
delivered, or parked after the retry window. An operator can make it due now (the destination
is fixed) or park it at once (it will never succeed: skip it); the worker acts within a second.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.inspection import retrying_record

retrying_app = typer.Typer(help="Events retrying after a failed delivery (the retry set).")
app.add_typer(retrying_app, name="retrying")

DestinationOption = Annotated[str | None, typer.Option(help="Only this destination id.")]
MessageIds = Annotated[
    list[str] | None, typer.Argument(help="messageIds (default: every retrying event).")
]


@retrying_app.command("list")
def list_retrying(
    destination: DestinationOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Retrying (and waiting) events per destination: attempts, next attempt, last error."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        found = store.retrying(destination, limit)
    finally:
        store.close()
    console = Console(highlight=False, soft_wrap=True)
    for dest, r in found:
        record = retrying_record(dest, r)
        if as_json:
            sys.stdout.buffer.write(msgspec.json.encode(record) + b"\n")
            continue
        when = f"next {record['nextAttempt']}" if r.state == "retrying" else "[yellow]waiting[/]"
        console.print(
            f"[bold]{dest}[/] {r.message_id} [dim](log #{r.seq}"
            + (f", {r.action}" if r.action else "")
            + f")[/] attempts={r.attempts} since {record['firstFailure']} {when}"
        )
        console.print(f"  [red]{r.last_error}[/]")
    if not found and not as_json:
        console.print("No retrying events.")
    sys.stdout.flush()


@retrying_app.command("retry")
def retry_now(
    message_ids: MessageIds = None,
    destination: DestinationOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Try these events again now, instead of at their next attempt."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        count = store.retry_now(destination, message_ids or (), now_ms=int(time.time() * 1000))
    finally:
        store.close()
    typer.echo(f"{count} retrying event(s) due now.")


@retrying_app.command("park")
def park_now(
    message_ids: MessageIds = None,
    destination: DestinationOption = None,
    all_events: Annotated[
        bool, typer.Option("--all", help="Park every retrying event (of --destination).")
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Park these events now (skip them); `sluice parked retry` sends them again later."""
    if not message_ids and not all_events:
        raise typer.BadParameter("name the messageIds to park, or use --all")
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        count = store.park_retrying(destination, message_ids or (), now_ms=int(time.time() * 1000))
    finally:
        store.close()
    typer.echo(f"{count} event(s) parked.")
