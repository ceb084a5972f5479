"""`sluice audiences list|show` and `sluice traits show`: what Engage computed and sent.

Read-only views of Engage's tables (docs/engage.md): each audience's members as last sent, a
profile's computed traits (at the log's clock, as the consumer computes them) and memberships,
and how far the consumer is behind the identity graph.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.engage import states
from sluice.engage.definitions import COMPUTED_PREFIX
from sluice.engage.position import read_position
from sluice.engage.runner import workspace_definitions
from sluice.engage.tables import ensure_schema
from sluice.errors import SluiceError
from sluice.identity.lookup import find_profile, live, parse_identifier
from sluice.identity.tables import IdentityDb, open_identity_db

audiences_app = typer.Typer(help="Audiences: members and status (docs/engage.md).")
traits_app = typer.Typer(help="Computed traits of a profile (docs/engage.md).")
app.add_typer(audiences_app, name="audiences")
app.add_typer(traits_app, name="traits")
JsonOption = Annotated[bool, typer.Option("--json", help="As one JSON object.")]


def _open(data_dir: Any, database_url: Any) -> tuple[Any, IdentityDb]:
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    db = open_identity_db(settings.data_dir, settings.database_url)
    ensure_schema(db)
    return store, db


def _members(db: IdentityDb, space: str) -> dict[str, int]:
    return {
        str(key): int(n)
        for key, n in db.execute(
            "SELECT audience_key, count(*) FROM audience_members WHERE space = ? AND member = 1"
            " GROUP BY audience_key",
            [space],
        )
    }


@audiences_app.command("list")
def list_audiences(
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Each audience with its member count, and the consumer's position and counters."""
    store, db = _open(data_dir, database_url)
    try:
        space, defs = workspace_definitions(store)
        position = read_position(db, space)
        identity = db.execute("SELECT seq FROM identity_position WHERE space = ?", [space])
        members = _members(db, space)
        outbox = int(
            db.execute("SELECT count(*) FROM engage_outbox WHERE space = ?", [space])[0][0]
        )
        doc = {
            "space": space,
            "position": position.seq if position else 0,
            "identity_position": int(identity[0][0]) if identity else 0,
            "recomputing": bool(
                position and (position.replaying or position.sweep_after is not None)
            ),
            "events": position.events if position else 0,
            "emitted": position.emitted if position else 0,
            "outbox": outbox,
            "audiences": [
                {"key": a.key, "name": a.name or a.key, "members": members.get(a.key, 0)}
                for a in defs.audiences
            ],
            "computed_traits": [
                {"key": t.key, "kind": t.kind, "within_days": t.within_days} for t in defs.traits
            ],
        }
    finally:
        db.close()
        store.close()
    if as_json:
        typer.echo(msgspec.json.encode(doc).decode())
        return
    console = Console(highlight=False)
    console.print(
        f"engage of space [bold]{space}[/]: position {doc['position']} (identity graph at"
        f" {doc['identity_position']}), {doc['events']} events read, {doc['emitted']} events"
        f" sent, {doc['outbox']} waiting"
        + (" [yellow](recomputing)[/]" if doc["recomputing"] else "")
    )
    for a in doc["audiences"]:  # type: ignore[attr-defined]
        console.print(f"  audience {a['key']}: {a['members']} members")
    for t in doc["computed_traits"]:  # type: ignore[attr-defined]
        window = f", last {t['within_days']} days" if t["within_days"] else ""
        console.print(f"  computed trait {t['key']}: {t['kind']}{window}")


@audiences_app.command("show")
def show_audience(
    key: Annotated[str, typer.Argument(help="The audience's key.")],
    limit: Annotated[int, typer.Option(help="Members to list.")] = 50,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """An audience's definition and its members (as last sent), with their user ids."""
    store, db = _open(data_dir, database_url)
    try:
        space, defs = workspace_definitions(store)
        audience = next((a for a in defs.audiences if a.key == key), None)
        if audience is None:
            raise SluiceError(f"no audience {key!r} in the workspace")
        rows = db.execute(
            "SELECT m.profile_id, m.changed_seq, i.id_value FROM audience_members m"
            " LEFT JOIN identities i ON i.space = m.space AND i.profile_id = m.profile_id"
            " AND i.id_type = 'user_id' WHERE m.space = ? AND m.audience_key = ? AND m.member = 1"
            " ORDER BY m.changed_seq, m.profile_id LIMIT ?",
            [space, key, limit],
        )
        doc = {
            "key": key,
            "definition": msgspec.to_builtins(audience),
            "members": _members(db, space).get(key, 0),
            "listed": [{"profile_id": r[0], "since_seq": r[1], "user_id": r[2]} for r in rows],
        }
    finally:
        db.close()
        store.close()
    if as_json:
        typer.echo(msgspec.json.encode(doc).decode())
        return
    console = Console(highlight=False)
    console.print(f"audience [bold]{key}[/]: {doc['members']} members")
    console.print(f"  condition: {msgspec.json.encode(audience.condition).decode()}")
    for m in doc["listed"]:
        console.print(
            f"  {m['profile_id']}  user_id={m['user_id'] or '-'}  since seq {m['since_seq']}"
        )


@traits_app.command("show")
def show_traits(
    identifier: Annotated[str, typer.Argument(help="type:value, e.g. user_id:jane")],
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """A profile's computed traits (now, at the log's clock) and audience memberships."""
    store, db = _open(data_dir, database_url)
    try:
        space, defs = workspace_definitions(store)
        collection, id_type, value = parse_identifier(identifier)
        profile = find_profile(db, space, collection, id_type, value)
        if not profile:
            raise SluiceError(f"no profile holds {identifier}")
        profile = live(db, space, profile)
        position = read_position(db, space)
        clock = position.clock_ms if position else 0
        saved = {
            key: states.load(text)
            for key, text in db.execute(
                "SELECT key, state FROM engage_states WHERE space = ? AND profile_id = ?",
                [space, profile],
            )
        }
        traits = {
            t.key: states.value(
                t.kind, saved.get(COMPUTED_PREFIX + t.key, {}), clock, t.within_days
            )
            for t in defs.traits
        }
        memberships = {
            str(k): bool(m)
            for k, m in db.execute(
                "SELECT audience_key, member FROM audience_members WHERE space = ?"
                " AND profile_id = ?",
                [space, profile],
            )
        }
        doc = {
            "profile_id": profile,
            "computed_traits": traits,
            "audiences": {a.key: memberships.get(a.key, False) for a in defs.audiences},
        }
    finally:
        db.close()
        store.close()
    if as_json:
        typer.echo(msgspec.json.encode(doc).decode())
        return
    console = Console(highlight=False)
    console.print(f"profile [bold]{profile}[/]")
    for key, v in traits.items():
        console.print(f"  {key} = {msgspec.json.encode(v).decode()}")
    for key, member in doc["audiences"].items():  # type: ignore[attr-defined]
        console.print(f"  audience {key}: {'member' if member else 'not a member'}")
