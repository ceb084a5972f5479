"""`sluice device-mode install|status|list`: Segment's browser destinations, served by Sluice.

`install` needs npm and node once (npm ci of the pinned lockfile into the data dir, then the
catalogue); the server then serves the bundles under `/next-integrations/actions/` and hands
the workspace's `mode: device` destinations to analytics.js (docs/device-mode.md).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer

from sluice.cli.app import app
from sluice.cli.options import DataDirOption, settings_from
from sluice.devicemode.install import PACKAGE, install, state
from sluice.errors import SluiceError

device_mode_app = typer.Typer(help="Device mode: Segment's browser destinations, from Sluice.")
app.add_typer(device_mode_app, name="device-mode")


@device_mode_app.command("install")
def install_device_mode(
    data_dir: DataDirOption = None,
    force: Annotated[bool, typer.Option(help="Run npm ci and describe again.")] = False,
) -> None:
    """Install the pinned @segment/browser-destinations (npm ci) into <data dir>/device-mode."""
    settings = settings_from(data_dir)
    try:
        catalog = install(settings.data_dir, force=force)
    except SluiceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"device mode installed: {PACKAGE} {catalog.doc.package},"
        f" {len(catalog.entries)} browser destinations (`sluice device-mode list`)"
    )


@device_mode_app.command("status")
def device_mode_status(data_dir: DataDirOption = None) -> None:
    """Whether device mode is installed, and which version."""
    found = state(settings_from(data_dir).data_dir)
    if found.catalog is None:
        typer.echo("not installed: run `sluice device-mode install`")
        raise typer.Exit(1)
    typer.echo(
        f"{PACKAGE} {found.catalog.doc.package}: {len(found.catalog.entries)} browser"
        " destinations, served at /next-integrations/actions/"
    )


@device_mode_app.command("list")
def list_browser_destinations(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole catalogue as JSON.")] = False,
) -> None:
    """The browser destinations a `mode: device` destination may name, with their actions."""
    found = state(settings_from(data_dir).data_dir)
    if found.catalog is None:
        typer.echo("not installed: run `sluice device-mode install`", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(msgspec.json.encode(found.catalog.doc).decode())
        return
    for entry in sorted(found.catalog.entries.values(), key=lambda e: e.slug):
        actions = ", ".join(entry.actions)
        typer.echo(f"{entry.slug:24} {entry.name:32} {actions}")
