"""Entry point of the `sluice` command: imports every command module, then runs typer."""

from __future__ import annotations

import sys

import sluice.cli.admin
import sluice.cli.analyticsjs
import sluice.cli.backup
import sluice.cli.bridge
import sluice.cli.devicemode
import sluice.cli.engage
import sluice.cli.events
import sluice.cli.identity
import sluice.cli.importer
import sluice.cli.lake
import sluice.cli.parked
import sluice.cli.privacy
import sluice.cli.profiles
import sluice.cli.protocols
import sluice.cli.ready
import sluice.cli.rejected
import sluice.cli.replay
import sluice.cli.retrying
import sluice.cli.serve
import sluice.cli.status
import sluice.cli.token
import sluice.cli.trace
import sluice.cli.violations
import sluice.cli.warehouse
import sluice.cli.workspace  # noqa: F401  (each module registers its commands on `app`)
from sluice.cli.app import app
from sluice.errors import SluiceError


def main() -> None:
    try:
        app()
    except SluiceError as exc:
        # Sluice's own errors explain themselves; a traceback would only hide the message.
        print(f"sluice: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
