"""`sluice events`: the newest stored events, pretty or as JSON lines, optionally followed live."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.spec.jsontext import lenient_decode
from sluice.spec.timestamps import format_ms
from sluice.store.base import StoredEvent
from sluice.store.base_event_store import EventQuery

FOLLOW_POLL_S = 0.5


def _summary(payload: dict[str, Any]) -> str:
    call = payload.get("type")
    if call == "track":
        return str(payload.get("event"))
    if call in ("page", "screen"):
        return str(payload.get("name") or "")
    if call == "group":
        return f"group {payload.get('groupId')}"
    if call == "alias":
        return f"{payload.get('previousId')} → {payload.get('userId')}"
    traits = payload.get("traits")
    return ", ".join(sorted(traits)) if isinstance(traits, dict) else ""


def _print(console: Console, events: list[StoredEvent], as_json: bool) -> None:
    for stored in events:
        payload = lenient_decode(stored.payload)  # an event stored broken still prints
        if as_json:
            sys.stdout.buffer.write(msgspec.json.encode(payload) + b"\n")
            continue
        who = payload.get("userId") or f"anon:{payload.get('anonymousId')}"
        console.print(
            f"[dim]#{stored.seq} {format_ms(stored.received_at_ms)}[/] "
            f"[bold cyan]{stored.type:<8}[/] [bold]{_summary(payload)}[/] "
            f"[green]{who}[/] [dim]source={stored.source_id} id={stored.message_id}[/]"
        )
        console.print_json(msgspec.json.encode(payload).decode())
    sys.stdout.flush()


@app.command()
def events(
    limit: Annotated[int, typer.Option(help="How many of the newest events.", min=1)] = 20,
    source: Annotated[str | None, typer.Option(help="Only this source id.")] = None,
    type: Annotated[str | None, typer.Option("--type", help="Only this call type.")] = None,
    event: Annotated[str | None, typer.Option(help="Only track events of this name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the newest stored events (oldest of them first), as Segment would have stored them."""
    store = open_store_for(settings_from(data_dir, database_url))
    console = Console(highlight=False, soft_wrap=True)
    query = EventQuery(limit=limit, source_id=source, type=type, event=event)
    found = list(reversed(store.newest(query)))
    _print(console, found, as_json)
    if not follow:
        store.close()
        return
    last = found[-1].seq if found else store.last_seq()
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)
            batch = list(
                reversed(
                    store.newest(
                        EventQuery(
                            limit=1000, source_id=source, type=type, event=event, after_seq=last
                        )
                    )
                )
            )
            if batch:
                _print(console, batch, as_json)
                last = batch[-1].seq
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
