"""`sluice apply FILE` and `sluice export`: the workspace as a file kept in version control.

A bad file is the user's to fix, not a crash: its error (file, path in the document, what is
wrong) goes to stderr and the command exits with status 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from sluice.cli.app import app
from sluice.cli.options import DatabaseUrlOption, DataDirOption, open_store_for, settings_from
from sluice.errors import SluiceError
from sluice.workspace.destinations import check_destinations
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import dump_workspace, load_workspace_file
from sluice.workspace.sync import ApplyReport, apply_workspace, export_workspace

EXIT_INVALID_FILE = 2
EXIT_FAILED = 1

FileArgument = Annotated[
    Path, typer.Argument(help="The workspace file (YAML) to apply.", show_default=False)
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change, and change nothing.")
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write to this file instead of stdout.", show_default=False
    ),
]


@app.command("apply")
def apply_command(
    file: FileArgument,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Make the workspace in the store match FILE (objects not in FILE are removed)."""
    try:
        settings = settings_from(data_dir, database_url)  # first: Segment's destinations
        ws = load_workspace_file(file)  # resolve against this data dir's bridge
        check_destinations(ws)
        # A first apply sets a store up; a dry run changes nothing, not even that.
        store = open_store_for(settings, create=not dry_run)
        try:
            report = apply_workspace(store, ws, dry_run=dry_run)
        finally:
            store.close()
    except WorkspaceError as exc:
        _fail(exc if exc.file else exc.in_file(str(file)), EXIT_INVALID_FILE)
    except SluiceError as exc:
        _fail(exc, EXIT_FAILED)
    _print_report(report, str(file), dry_run)


@app.command("export")
def export_command(
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    output: OutputOption = None,
) -> None:
    """Print the workspace in the store as YAML, in the form `sluice apply` reads."""
    try:
        store = open_store_for(settings_from(data_dir, database_url))
        try:
            ws = export_workspace(store)
        finally:
            store.close()
    except SluiceError as exc:
        _fail(exc, EXIT_FAILED)
    text = dump_workspace(ws)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror or exc}", EXIT_FAILED)


def _fail(error: Exception | str, code: int) -> NoReturn:
    # Plain text, not rich: paths like `sources[1]` must not be read as markup.
    typer.echo(str(error), err=True)
    raise typer.Exit(code)


def _print_report(report: ApplyReport, file: str, dry_run: bool) -> None:
    console = Console(highlight=False, soft_wrap=True)
    if not report.changed:
        console.print(f"No changes: the store already matches {escape(file)}.")
        return
    verb = "Would apply" if dry_run else "Applied"
    console.print(
        f"{verb} {escape(file)}: {len(report.created)} created, {len(report.updated)} updated,"
        f" {len(report.deleted)} deleted."
    )
    for sign, style, names in (
        ("+", "green", report.created),
        ("~", "yellow", report.updated),
        ("-", "red", report.deleted),
    ):
        for name in names:
            console.print(f"  [{style}]{sign} {escape(name)}[/]")
    if not report.generated_keys:
        return
    if dry_run:
        ids = ", ".join(report.generated_keys)
        console.print(f"A write key would be generated for: {escape(ids)}.")
        return
    console.print("Generated write keys (`sluice export` shows them again):")
    for source_id, key in report.generated_keys.items():
        console.print(f"  {escape(source_id)}: [bold]{escape(key)}[/]")
