"""The typer application every CLI module registers its commands on."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice import __version__

app = typer.Typer(
    name="sluice",
    help="Sluice: a self-hosted, Segment-compatible customer data platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sluice {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of `sluice` itself, before any command."""
