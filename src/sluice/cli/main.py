"""Entry point of the `sluice` command: imports every command module, then runs typer."""

from __future__ import annotations

import sluice.cli.events
import sluice.cli.rejected
import sluice.cli.serve
import sluice.cli.status
import sluice.cli.workspace  # noqa: F401  (each module registers its commands on `app`)
from sluice.cli.app import app


def main() -> None:
    app()
