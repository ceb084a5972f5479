"""The typer application every CLI module registers its commands on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sluice",
    help="Sluice: a self-hosted, Segment-compatible customer data platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
