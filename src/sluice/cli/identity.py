"""`sluice identity status|rebuild`: how far the identity graph is, and building it again.

The worker keeps the graph up to date by itself; `rebuild` empties its tables and replays the
log with a progress bar (after changing rules when the worker could not, or to recover from a
bad rule). The worker may run steps at the same time: each step owns the position while it
runs, so no event is applied twice.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.errors import SluiceError
from sluice.identity.consumer import IdentityConsumer, read_position, reset
from sluice.identity.runner import workspace_rules
from sluice.identity.tables import open_identity_db

identity_app = typer.Typer(help="The identity graph: status and rebuild (docs/identity.md).")
app.add_typer(identity_app, name="identity")


@identity_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="As one JSON object.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Position, lag, profiles, merges and refusals of the workspace's identity graph."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    db = open_identity_db(settings.data_dir, settings.database_url)
    try:
        space, rules = workspace_rules(store)
        position = read_position(db, space)
        last = store.last_seq()

        def count(sql: str) -> int:
            return int(db.execute(sql, [space])[0][0])

        doc: dict[str, Any] = {
            "space": space,
            "enabled": rules.enabled,
            "position": position.seq if position else 0,
            "log_last_seq": last,
            "lag": max(0, last - (position.seq if position else 0)),
            "events": position.events if position else 0,
            "profiles": count(
                "SELECT count(*) FROM profiles WHERE space = ? AND merged_into IS NULL"
            ),
            "identities": count("SELECT count(*) FROM identities WHERE space = ?"),
            "merges": position.merges if position else 0,
            "merges_refused": position.refused if position else 0,
            "identifiers_demoted": position.demoted if position else 0,
            "rules_current": bool(position and position.rules == rules.fingerprint),
            "rebuild_needed": bool(position and position.rebuild_needed),
        }
    finally:
        db.close()
        store.close()
    if as_json:
        typer.echo(msgspec.json.encode(doc).decode())
        return
    console = Console(highlight=False)
    state = "on" if doc["enabled"] else "[yellow]off[/] (identity.enabled: false)"
    console.print(f"identity graph of space [bold]{space}[/]: {state}")
    console.print(f"  position {doc['position']} of {doc['log_last_seq']} (lag {doc['lag']})")
    console.print(
        f"  {doc['profiles']} profiles, {doc['identities']} identities, {doc['events']} events read"
    )
    console.print(
        f"  {doc['merges']} merges, {doc['merges_refused']} refused by the merge-size"
        f" guard, {doc['identifiers_demoted']} identifiers demoted by limits"
    )
    if doc["rebuild_needed"]:
        console.print(
            "  [yellow]rules changed after the log was trimmed: they apply from then"
            " on; `sluice identity rebuild --force` replays what the log holds[/]"
        )
    elif position is not None and not doc["rules_current"]:
        console.print("  rules changed: the worker rebuilds at its next look at the workspace")


@identity_app.command("rebuild")
def rebuild(
    force: Annotated[
        bool,
        typer.Option("--force", help="Rebuild even if the log no longer holds every event."),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Empty the identity tables and replay the whole log into them, with the current rules."""
    settings = settings_from(data_dir, database_url)
    store = open_store_for(settings)
    db = open_identity_db(settings.data_dir, settings.database_url, consumer=True)
    console = Console(stderr=True, highlight=False)
    try:
        space, rules = workspace_rules(store)
        consumer = IdentityConsumer(store, db, space, rules)
        position = read_position(db, space)
        if position is not None and not consumer.log_complete(position) and not force:
            raise SluiceError(
                "the log no longer holds the identity graph's first events (log retention):"
                " a rebuild would forget the profiles they made; --force to rebuild anyway"
            )
        reset(db, space, rules)
        total = store.last_seq()
        progress = Progress(
            TextColumn(f"rebuilding the identity graph of [bold]{space}[/]"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.completed:,} of {task.total:,}"),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            bar = progress.add_task("rebuild", total=max(total, 1))

            def advance(_: int) -> None:
                current = read_position(db, space)
                progress.update(bar, completed=min(current.seq if current else 0, total))

            consumer.run_until_caught_up(advance)
            progress.update(bar, completed=total)
        final = read_position(db, space)
    finally:
        db.close()
        store.close()
    assert final is not None
    console.print(
        f"rebuilt: {final.events:,} events, {final.merges:,} merges,"
        f" {final.refused:,} refused, position {final.seq}"
    )
