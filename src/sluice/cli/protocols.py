"""`sluice protocols import`: a Segment tracking plan export as a workspace file's entry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
import yaml

from sluice.cli.app import app
from sluice.protocols.errors import PlanError
from sluice.protocols.segment_import import import_plan

protocols_app = typer.Typer(help="Tracking plans (docs/protocols.md).", no_args_is_help=True)
app.add_typer(protocols_app, name="protocols")


@protocols_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="Segment's tracking plan JSON (Public or Config API).")
    ],
    plan_id: Annotated[
        str | None, typer.Option("--id", help="The plan's id in the workspace.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="A source the plan applies to (repeat).")
    ] = None,
) -> None:
    """Print the `tracking_plans:` entry to paste into a workspace file (then `sluice apply`)."""
    try:
        document = msgspec.json.decode(file.read_bytes())
        entry = import_plan(document, plan_id)
    except (OSError, msgspec.DecodeError) as exc:
        typer.echo(f"sluice: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    except PlanError as exc:
        typer.echo(f"sluice: {file}: {exc}", err=True)
        raise typer.Exit(2) from None
    if source:
        entry = {
            "id": entry["id"],
            "name": entry["name"],
            "sources": source,
            "rules": entry["rules"],
        }
    typer.echo(
        yaml.safe_dump({"tracking_plans": [entry]}, sort_keys=False, allow_unicode=True), nl=False
    )
