"""`sluice trace MESSAGE_ID`: where one event went, for every destination of its source."""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.delivery.trace import trace_message


@app.command()
def trace(
    message_id: Annotated[str, typer.Argument(help="The event's messageId.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Answer "where did my event go?": received, then per destination what happened to it."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        report = trace_message(store, message_id)
    finally:
        store.close()
    if as_json:
        sys.stdout.buffer.write(msgspec.json.encode({"messageId": message_id, "found": report}))
        sys.stdout.write("\n")
        return
    console = Console(highlight=False, soft_wrap=True)
    if not report:
        console.print(f"No stored event has messageId {message_id!r} (rejected or deduplicated?)")
        raise typer.Exit(1)
    for item in report:
        console.print(
            f"[bold]{item['type']}[/] {item['event'] or ''} from source [bold]{item['source']}[/]"
            f" received {item['receivedAt']} (log position {item['seq']})"
        )
        for hop in item["destinations"]:
            details = ", ".join(
                f"{k}={v}" for k, v in hop.items() if k not in ("destination", "status", "type")
            )
            console.print(
                f"  {hop['destination']}: [bold]{hop['status']}[/] {details}", markup=True
            )
