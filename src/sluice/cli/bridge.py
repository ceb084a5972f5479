"""`sluice bridge install|status|catalog`: Segment's destination catalogue, run by Node.

`install` needs node and npm once (npm ci of the pinned lockfile into the data dir);
`status` and `catalog` only read what install wrote and never start Node.
"""

from __future__ import annotations

import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from sluice.bridge.catalog import SUPPORT_CLASSES, Catalog
from sluice.bridge.install import install, state
from sluice.cli.app import app
from sluice.cli.options import DataDirOption, settings_from

bridge_app = typer.Typer(help="Segment's destination catalogue (@segment/action-destinations).")
app.add_typer(bridge_app, name="bridge")


@bridge_app.command("install")
def install_bridge(
    data_dir: DataDirOption = None,
    force: Annotated[bool, typer.Option(help="Run npm ci and rewrite the catalogue.")] = False,
) -> None:
    """Install the pinned package (npm ci) into <data dir>/bridge and write its catalogue."""
    settings = settings_from(data_dir)
    catalog = install(settings.data_dir, force=force, echo=typer.echo)
    counts = catalog.counts()
    typer.echo(
        f"bridge installed: @segment/action-destinations {catalog.doc.package}, "
        f"{len(catalog.entries)} destinations ({_counts(counts)})"
    )


@bridge_app.command("status")
def status(data_dir: DataDirOption = None) -> None:
    """What is installed: package version, Node.js, destinations per support class."""
    found = state(settings_from(data_dir).data_dir)
    typer.echo(f"bridge dir: {found.bridge_dir}")
    typer.echo(f"node: {found.node_version or found.node_error}")
    if found.package_version is None or found.catalogue is None:
        typer.echo("not installed: run `sluice bridge install`")
        raise typer.Exit(1)
    typer.echo(f"package: @segment/action-destinations {found.package_version}")
    catalog = found.catalogue
    zero = sum(1 for e in catalog.entries.values() if e.zero_config)
    typer.echo(f"destinations: {len(catalog.entries)} ({_counts(catalog.counts())})")
    typer.echo(f"zero-config (supported, with automatic presets): {zero}")


@bridge_app.command("catalog")
def list_catalog(
    data_dir: DataDirOption = None,
    support: Annotated[
        str | None, typer.Option(help="Only this class: supported, needs_oauth, unsupported.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The destinations of the installed package, with their support class and reason."""
    if support is not None and support not in SUPPORT_CLASSES:
        raise typer.BadParameter(f"one of {', '.join(SUPPORT_CLASSES)}", param_hint="--support")
    catalog = Catalog.for_data_dir(settings_from(data_dir).data_dir)
    entries = catalog.of_class(support)
    if as_json:
        for e in entries:
            record = {
                "type": e.type, "slug": e.slug, "name": e.name, "metadataId": e.metadata_id,
                "authScheme": e.auth_scheme, "support": e.support, "reason": e.reason,
                "zeroConfig": e.zero_config, "actions": sorted(e.actions),
            }  # fmt: skip
            sys.stdout.buffer.write(msgspec.json.encode(record) + b"\n")
        sys.stdout.flush()
        return
    console = Console(highlight=False, soft_wrap=True)
    for e in entries:
        mark = {"supported": "green", "needs_oauth": "yellow"}.get(e.support, "red")
        console.print(f"[bold]{e.type}[/] {e.name} [{mark}]{e.support}[/] [dim]{e.reason}[/]")
    console.print(f"{len(entries)} destinations")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {counts.get(name, 0)}" for name in SUPPORT_CLASSES)
