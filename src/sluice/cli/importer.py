"""`sluice import segment FILE`: a Segment workspace export turned into a workspace file.

Reads the Public API's answers gathered in one JSON file (docs/import.md), writes the Sluice
workspace file (stdout, or `-o FILE`) and tells on stderr what it could not map and why. The
written file applies with `sluice apply`: every destination in it was compiled first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import msgspec
import typer

from sluice.cli.app import app
from sluice.cli.options import DataDirOption, settings_from
from sluice.errors import SluiceError
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.files import dump_workspace
from sluice.workspace.model import Workspace
from sluice.workspace.model_checks import check_workspace
from sluice.workspace.segment_import import convert

EXIT_INVALID_FILE = 2

import_app = typer.Typer(help="Import a workspace from elsewhere.")
app.add_typer(import_app, name="import")


@import_app.command("segment")
def import_segment(
    file: Annotated[
        Path, typer.Argument(help="The export (JSON of Public API answers).", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the workspace file here, not to stdout."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the Sluice workspace a Segment workspace export describes (docs/import.md)."""
    settings_from(data_dir)  # Segment's destinations resolve against this data dir's bridge
    try:
        export = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"{file}: cannot read: {exc.strerror or exc}")
    except ValueError as exc:
        _fail(f"{file}: not JSON: {exc}")
    try:
        imported = convert(export)
        workspace = msgspec.convert(imported.document, Workspace)
        check_workspace(workspace)
    except (SluiceError, msgspec.ValidationError) as exc:
        error = exc.in_file(str(file)) if isinstance(exc, WorkspaceError) else exc
        _fail(f"{file}: {error}")
    text = dump_workspace(workspace)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"{output}: cannot write: {exc.strerror or exc}", 1)
    counts = f"{len(workspace.sources)} sources, {len(workspace.destinations)} destinations"
    typer.echo(f"imported {counts} from {file}", err=True)
    for note in imported.notes:
        typer.echo(f"note: {note}", err=True)
    for skipped in imported.skipped:
        typer.echo(f"not imported: {skipped.what}: {skipped.why}", err=True)


def _fail(message: str, code: int = EXIT_INVALID_FILE) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)
