"""`sluice analytics-js install|status`: analytics.js (analytics-next) served by Sluice itself.

`install` needs npm once (npm ci of the pinned lockfile into the data dir); the server then
serves `/analytics.js/v1/<writeKey>/analytics.min.js` and its chunks (docs/analytics-js.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.analyticsjs.install import PACKAGE, install, state
from sluice.cli.app import app
from sluice.cli.options import DataDirOption, settings_from
from sluice.errors import SluiceError

analytics_js_app = typer.Typer(help="analytics.js served by Sluice (@segment/analytics-next).")
app.add_typer(analytics_js_app, name="analytics-js")


@analytics_js_app.command("install")
def install_analytics_js(
    data_dir: DataDirOption = None,
    force: Annotated[bool, typer.Option(help="Run npm ci again.")] = False,
) -> None:
    """Install the pinned analytics-next (npm ci) into <data dir>/analytics-js."""
    settings = settings_from(data_dir)
    try:
        found = install(settings.data_dir, force=force)
    except SluiceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"analytics.js installed: {PACKAGE} {found.version} ({found.folder})")


@analytics_js_app.command("status")
def analytics_js_status(data_dir: DataDirOption = None) -> None:
    """Whether analytics.js is installed, and which version."""
    found = state(settings_from(data_dir).data_dir)
    if found.version is None:
        typer.echo("not installed: run `sluice analytics-js install`")
        raise typer.Exit(1)
    typer.echo(f"{PACKAGE} {found.version}: served at /analytics.js/v1/<writeKey>/analytics.min.js")
