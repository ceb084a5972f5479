"""`sluice token create|list|revoke`: tokens for the admin API (`/api/v1`) and, with
`--scope profile`, for the Profile API (`/v1/spaces/...`, read-only).

Tokens are made here, on the machine that holds the store, rather than through the API: the
first token cannot come from an API that needs one. The token goes to stdout alone, so
`TOKEN=$(sluice token create)` works; the rest goes to stderr.
"""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from sluice.admin.tokens import (
    ADMIN,
    PROFILE,
    TokenError,
    create_token,
    list_tokens,
    revoke_token,
)
from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from

token_app = typer.Typer(help="Tokens for the admin API (/api/v1) and the Profile API.")
_LABELS = {ADMIN: "admin", PROFILE: "Profile API"}
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="What the token is for (shown by `list`).")] = "",
    scope: Annotated[
        str,
        typer.Option(help="admin: the admin API; profile: the Profile API (reads profiles)."),
    ] = ADMIN,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Make a new token and print it; Sluice keeps only its hash, so it is shown this once."""
    if scope not in _LABELS:
        typer.echo(f"--scope must be one of: {', '.join(_LABELS)} (got {scope!r})", err=True)
        raise typer.Exit(2)
    # Provisioning may make the token before the first `sluice serve`.
    store = open_store_for(settings_from(data_dir, database_url), create=True)
    try:
        record, token = create_token(store, name, scope)
    finally:
        store.close()
    typer.echo(token)
    typer.echo(
        f"Created {_LABELS[record.scope]} token {record.id}"
        + (f" ({record.name})" if record.name else "")
        + ". Keep it now: it cannot be shown again.",
        err=True,
    )


@token_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """The tokens (never the tokens themselves): id, name, when made, when revoked."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        tokens = list_tokens(store)
    finally:
        store.close()
    if as_json:
        for record in tokens:
            line = {k: v for k, v in msgspec.structs.asdict(record).items() if k != "sha256"}
            sys.stdout.buffer.write(msgspec.json.encode(line) + b"\n")
        return
    if not tokens:
        typer.echo("No admin tokens (`sluice token create` makes one).")
        return
    table = Table()
    for column in ("id", "scope", "name", "created", "revoked"):
        table.add_column(column)
    for record in tokens:
        row = (record.id, record.scope, record.name, record.created_at, record.revoked_at or "-")
        table.add_row(*row)
    Console(highlight=False).print(table)


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `sluice token list`).")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Revoke a token (of either scope): requests with it are refused from now on."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        record = revoke_token(store, token_id)
    except TokenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(f"Revoked admin token {record.id} at {record.revoked_at}.")
