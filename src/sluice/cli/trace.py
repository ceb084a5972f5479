"""`sluice trace MESSAGE_ID`: where one event went, for every destination of its source."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.delivery.consumer import cursor_name
from sluice.delivery.plan import decide
from sluice.errors import SluiceError
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store, StoredEvent


def _hops(store: Store, stored: StoredEvent) -> list[dict[str, Any]]:
    event = msgspec.json.decode(stored.payload)
    retrying = {
        (dest, r.message_id): r for dest, r in store.retrying() if r.message_id == stored.message_id
    }
    parked = {p.destination: p for p in store.parked_for_message(stored.message_id)}
    hops: list[dict[str, Any]] = []
    for obj in store.list_config("destination"):
        hop: dict[str, Any] = {"destination": obj.id}
        try:
            config = compile_destination(obj.body)
        except (DestinationConfigError, SluiceError) as exc:
            hops.append({**hop, "status": "not_configured", "detail": str(exc)})
            continue
        if config.sources and stored.source_id not in config.sources:
            continue
        hop["type"] = config.type
        cursor = store.find_cursor(cursor_name(obj.id))
        if obj.id in parked:
            p = parked[obj.id]
            hop.update(
                status="parked" if p.state != "resent" else "delivered_after_resend",
                at=format_ms(p.parked_at_ms),
                reason=p.reason,
                attempts=p.attempts,
                request=msgspec.json.decode(p.request),
                response=msgspec.json.decode(p.response),
            )
        elif (obj.id, stored.message_id) in retrying:
            r = retrying[(obj.id, stored.message_id)]
            hop.update(
                status="retrying",
                attempts=r.attempts,
                next_attempt=format_ms(r.next_attempt_ms),
                last_error=r.last_error,
            )
        elif cursor is None or cursor < stored.seq:
            hop["status"] = "pending" if config.enabled else "destination_disabled"
        else:
            reason, _ = decide(config, event)
            step = store.delivery_step_for(obj.id, stored.seq)
            if reason is not None:
                hop.update(status="filtered", reason=reason)
            elif step is None:
                hop["status"] = "not_sent"  # the destination was connected after this event
            else:
                hop.update(status="delivered", at=format_ms(step[0]), attempts=step[1])
        hops.append(hop)
    return hops


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
        found = store.find_events(message_id)
        report: list[dict[str, Any]] = [
            {
                "messageId": s.message_id,
                "source": s.source_id,
                "seq": s.seq,
                "type": s.type,
                "event": s.event,
                "receivedAt": format_ms(s.received_at_ms),
                "destinations": _hops(store, s),
            }
            for s in found
        ]
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
