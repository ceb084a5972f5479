"""`sluice admin create|list|delete`: the accounts that sign in to the web UI.

The first admin is usually made here, on the server, before anyone opens the UI (the UI's
first-run screen is the other way, from a browser on the same machine). Without `--password`
the password is prompted for, twice and hidden, so it stays out of the shell's history.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.ui.accounts import AccountError, create_admin, delete_admin, list_admins

admin_app = typer.Typer(help="Admin accounts of the web UI.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")

EXIT_REFUSED = 2


@admin_app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="The admin's email (the sign-in name).")],
    password: Annotated[
        str | None,
        typer.Option(help="The password (prompted for when not given).", show_default=False),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Set a new password for an existing admin.")
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create an admin who can sign in to the web UI (or, with --update, change a password)."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    # The first admin may come before the first `sluice serve`.
    store = open_store_for(settings_from(data_dir, database_url), create=True)
    try:
        admin = create_admin(store, email, password, replace=update)
    except AccountError as exc:
        typer.echo(f"sluice admin: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    finally:
        store.close()
    if update:
        typer.echo(f"New password set for {admin.email}; their other sessions are signed out.")
    else:
        typer.echo(f"Admin {admin.email} created: sign in at the server's address, e.g. /signin.")


@admin_app.command("list")
def list_command(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """The admins' emails."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        admins = list_admins(store)
    finally:
        store.close()
    for admin in sorted(admins, key=lambda a: a.email):
        typer.echo(admin.email)


@admin_app.command("delete")
def delete(
    email: Annotated[str, typer.Argument(help="The admin to remove.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Remove an admin; their sessions end at their next request."""
    store = open_store_for(settings_from(data_dir, database_url))
    try:
        delete_admin(store, email)
    except AccountError as exc:
        typer.echo(f"sluice admin: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    finally:
        store.close()
    typer.echo(f"Admin {email} removed.")
