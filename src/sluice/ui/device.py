"""A device-mode destination's page: what the page's analytics.js is handed, read only.

It runs in the browser, so it has no delivery, rules or test tabs: the page shows the Segment
destination it names, the bundle URL path, its settings and subscriptions as the settings
endpoint hands them out, or why it is left out (not installed, a check that fails). Changes go
through the workspace file (`sluice apply`), which checks them against the catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from sluice.devicemode.catalog import DeviceCatalog
from sluice.devicemode.plugins import BUNDLE_ROOT, compile_device
from sluice.errors import SluiceError
from sluice.workspace.model import Destination


def device_context(destination: Destination, data_dir: Path) -> dict[str, Any]:
    """The template's values: `plugin` (compiled) or `problem` (why it is left out)."""
    try:
        plugin = compile_device(msgspec.to_builtins(destination), DeviceCatalog.load(data_dir))
    except SluiceError as exc:
        return {"destination": destination, "plugin": None, "problem": str(exc)}
    return {
        "destination": destination,
        "plugin": plugin,
        "problem": "",
        "bundle_path": BUNDLE_ROOT + plugin.definition.bundle,
        "settings_json": msgspec.json.format(msgspec.json.encode(plugin.settings)).decode(),
        "subscriptions_json": msgspec.json.format(
            msgspec.json.encode(plugin.subscriptions)
        ).decode(),
    }


def device_type_names(data_dir: Path) -> dict[str, str]:
    """`type` as written → "<Segment name> · device mode", for the destinations list."""
    try:
        catalog = DeviceCatalog.load(data_dir)
    except SluiceError:
        return {}
    names: dict[str, str] = {}
    for entry in catalog.entries.values():
        for alias in (entry.slug, entry.name, entry.metadata_id):
            names[alias] = f"{entry.name} · device mode"
    return names
