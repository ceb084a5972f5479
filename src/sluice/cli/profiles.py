"""`sluice profiles show <type:value>`: one profile of the identity graph, and why it is so.

Its identifiers, its traits (each with the source and time of the event that set it), its
recent events read from the log, and the merges that made it, each with the reason: "explain
this merge".
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.errors import SluiceError
from sluice.identity.lookup import find_profile, parse_identifier, view
from sluice.identity.runner import workspace_rules
from sluice.identity.tables import open_identity_db
from sluice.spec.timestamps import format_ms

profiles_app = typer.Typer(help="Profiles of the identity graph (docs/identity.md).")
app.add_typer(profiles_app, name="profiles")


@profiles_app.command("show")
def show(
    identifier: Annotated[str, typer.Argument(help="type:value, e.g. user_id:abc or email:a@b.c")],
    events: Annotated[int, typer.Option(min=0, help="Recent events to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="The profile as JSON.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Show the profile an identifier belongs to."""
    try:
        collection, id_type, value = parse_identifier(identifier)
    except ValueError as exc:
        raise SluiceError(str(exc)) from None
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    db = open_identity_db(settings.data_dir, settings.database_url)
    try:
        space, rules = workspace_rules(store)
        profile = find_profile(db, space, collection, id_type, value)
        found = view(db, space, profile, events, store, rules) if profile else None
        if found is None:
            raise SluiceError(f"no profile has {id_type}:{value} (see `sluice identity status`)")
        log_events = []
        for seq in found.event_seqs:
            for event in store.read_after(seq - 1, 1):
                if event.seq == seq:
                    body = msgspec.json.decode(event.payload)
                    log_events.append(
                        {
                            "seq": seq,
                            "type": event.type,
                            "event": event.event,
                            "message_id": event.message_id,
                            "source_id": event.source_id,
                            "timestamp": body.get("timestamp"),
                        }
                    )
    finally:
        db.close()
        store.close()
    document: dict[str, Any] = {
        "space": space,
        "profile_id": found.profile_id,
        "collection": found.collection,
        "created_at": format_ms(found.created_ms),
        "updated_at": format_ms(found.updated_ms),
        "first_message_id": found.first_message_id,
        "last_message_id": log_events[0]["message_id"] if log_events else None,
        "merged_profiles": found.members[1:],
        "external_ids": found.identities,
        "traits": found.traits,
        "events": log_events,
        "merges": found.merges,
    }
    if as_json:
        typer.echo(msgspec.json.encode(document).decode())
        return
    _print(Console(highlight=False), document, len(found.event_seqs))


def _print(console: Console, doc: dict[str, Any], indexed: int) -> None:
    console.print(f"[bold]{doc['profile_id']}[/] ({doc['collection']}, space {doc['space']})")
    console.print(f"created {doc['created_at']}, updated {doc['updated_at']}")
    if doc["merged_profiles"]:
        console.print(f"merged into it: {', '.join(doc['merged_profiles'])}")
    ids = Table("type", "id", "source", "first seen", "last seen", title="External ids")
    for i in doc["external_ids"]:
        ids.add_row(
            i["type"],
            i["id"],
            i["source_id"],
            format_ms(i["created_ms"]),
            "—" if i["last_seen_ms"] is None else format_ms(i["last_seen_ms"]),
        )
    console.print(ids)
    traits = Table("trait", "value", "source", "updated", title="Traits")
    for t in doc["traits"]:
        traits.add_row(
            t["key"],
            msgspec.json.encode(t["value"]).decode(),
            t["source_id"],
            format_ms(t["updated_ms"]),
        )
    console.print(traits)
    events = Table(
        "seq",
        "type",
        "event",
        "timestamp",
        "source",
        "message id",
        title=f"Recent events ({len(doc['events'])} shown)",
    )
    for e in doc["events"]:
        events.add_row(
            str(e["seq"]),
            e["type"],
            e["event"] or "",
            str(e["timestamp"] or ""),
            e["source_id"],
            e["message_id"],
        )
    console.print(events)
    if indexed > len(doc["events"]):
        console.print(f"({indexed - len(doc['events'])} indexed events are no longer in the log)")
    if doc["merges"]:
        merges = Table("seq", "merged", "into", "why", title="Merges")
        for m in doc["merges"]:
            merges.add_row(str(m["seq"]), m["loser"], m["winner"], m["reason"])
        console.print(merges)
