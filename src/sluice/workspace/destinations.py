"""Checking each destination of a workspace against its type, before anything is written.

`check_workspace` checks the document's shape; whether a destination's settings, filters,
mappings and triggers make sense depends on its type, which only the delivery engine knows.
`sluice apply`, the admin API and the UI all call this, so a workspace is accepted by the same
rules however it arrives.

Filters are checked strictly here: a condition that is not valid FQL is refused with the field
named (`destinations[0].filters[1].if`), as a mapping's trigger is. The delivery engine itself
is lenient with stored filters (a document stored before this check still loads, and its broken
filter drops every event), so the strict check belongs to the way in.
"""

from __future__ import annotations

import msgspec

from sluice.errors import SluiceError
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Destination, Workspace


def check_destinations(ws: Workspace) -> None:
    """Each destination against its type: settings, filters, mappings and triggers compile;
    and each lake warehouse's storage settings (its object storage's bucket, endpoint, keys)."""
    _check_lakes(ws)
    # Imported here: the delivery engine (and every destination type) is heavy to import, and
    # reading or exporting a workspace does not need it.
    from sluice.delivery.config import DestinationConfigError, compile_destination
    from sluice.delivery.filters import FilterError, parse_filters

    for index, destination in enumerate(ws.destinations):
        at = f"destinations[{index}]"
        if destination.mode == "device":
            _check_device(destination, at)
            continue
        try:
            parse_filters(destination.filters, strict=True)
        except FilterError as exc:
            path = f"{at}.filters"
            if exc.index is not None:
                path += f"[{exc.index}]" + (f".{exc.field}" if exc.field else "")
            raise WorkspaceError(exc.message, path=path) from exc
        try:
            compile_destination(msgspec.to_builtins(destination))
        except DestinationConfigError as exc:
            path = at + (f".{exc.path}" if exc.path else "")
            raise WorkspaceError(exc.message, path=path) from exc


def _check_device(destination: Destination, at: str) -> None:
    """A `mode: device` destination, checked against the installed device-mode catalogue."""
    from sluice.bridge.location import data_dir
    from sluice.devicemode.catalog import DeviceCatalog
    from sluice.devicemode.plugins import DeviceModeConfigError, compile_device

    try:
        compile_device(msgspec.to_builtins(destination), DeviceCatalog.load(data_dir()))
    except DeviceModeConfigError as exc:
        raise WorkspaceError(exc.message, path=f"{at}.{exc.path}") from exc
    except SluiceError as exc:
        raise WorkspaceError(str(exc), path=f"{at}.mode") from exc


def _check_lakes(ws: Workspace) -> None:
    from sluice.lake.settings import lake_settings_problem

    for index, warehouse in enumerate(ws.warehouses):
        if warehouse.type != "lake":
            continue
        problem = lake_settings_problem(dict(warehouse.settings))
        if problem is not None:
            path = f"warehouses[{index}].settings.{problem.field}"
            raise WorkspaceError(problem.message, path=path)
