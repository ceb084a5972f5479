"""The workspace's device-mode destinations as the settings endpoint hands them out.

The collector reloads this when the workspace changes (with its sources). A destination that
cannot be compiled, or device mode not installed, leaves that destination out of the settings
and is logged once per workspace version: analytics.js then loads without it, and the page
keeps tracking to Sluice (a broken device-mode setting must never break a customer's page).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from sluice.devicemode import is_device_mode
from sluice.devicemode.catalog import DeviceCatalog, DeviceModeNotInstalled
from sluice.devicemode.plugins import DevicePlugin, compile_all

log = logging.getLogger(__name__)


class DevicePlugins:
    """The compiled device-mode destinations of one workspace version."""

    def __init__(self, plugins: Iterable[DevicePlugin] = (), errors: dict[str, str] | None = None):
        self.plugins = list(plugins)
        self.errors = errors or {}

    @classmethod
    def load(cls, bodies: Iterable[bytes], data_dir: Path) -> DevicePlugins:
        docs: list[dict[str, Any]] = [msgspec.json.decode(b) for b in bodies if is_device_mode(b)]
        if not docs:
            return cls()
        try:
            catalog = DeviceCatalog.load(data_dir)
        except DeviceModeNotInstalled as exc:
            ids = ", ".join(str(d.get("id")) for d in docs)
            log.error("device-mode destination(s) %s left out of the settings: %s", ids, exc)
            return cls(errors={str(d.get("id")): str(exc) for d in docs})
        plugins, errors = compile_all(docs, catalog)
        for dest, why in errors.items():
            log.error("device-mode destination %s left out of the settings: %s", dest, why)
        return cls(plugins, errors)

    def for_source(self, source_id: str) -> list[DevicePlugin]:
        return [p for p in self.plugins if p.serves(source_id)]
