"""The catalog of destination types: what each one is called, its settings, actions and presets.

Destinations declare themselves as data (a `Settings` Struct, actions, presets), so the catalog
is read off the classes in the registry: the settings' JSON Schema comes from msgspec, the same
types the workspace checks settings against, and a form built from it asks for what `apply`
accepts.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from sluice.admin.errors import NotFound
from sluice.destinations.base import Destination
from sluice.destinations.registry import known_types, load
from sluice.errors import SluiceError

log = logging.getLogger(__name__)


def settings_schema(cls: type[Destination]) -> dict[str, Any]:
    """The settings' JSON Schema with the settings object at its root (not behind a `$ref`)."""
    schema: dict[str, Any] = msgspec.json.schema(cls.Settings)
    defs: dict[str, Any] = schema.pop("$defs", {})
    ref = schema.get("$ref", "")
    name = ref.removeprefix("#/$defs/")
    if not ref or name not in defs:
        return schema
    root: dict[str, Any] = defs.pop(name)
    if defs:  # nested Structs: their `#/$defs/...` references resolve against this root
        root["$defs"] = defs
    return root


def describe(cls: type[Destination]) -> dict[str, Any]:
    """One destination type as the catalog shows it."""
    return {
        "id": cls.id,
        "name": cls.name,
        "aliases": list(cls.aliases),
        "default_endpoint": cls.default_endpoint,
        "timeout_s": cls.timeout_s,
        "settings_schema": settings_schema(cls),
        "actions": [
            {
                "id": action.id,
                "title": action.title,
                "max_batch": action.max_batch,
                "max_batch_bytes": action.max_batch_bytes,
            }
            for action in cls.actions.values()
        ],
        "presets": [
            {
                "name": preset.name,
                "action": preset.action,
                "trigger": preset.trigger,
                "mapping": msgspec.to_builtins(dict(preset.mapping)),
            }
            for preset in cls.presets
        ],
    }


def destination_types() -> list[dict[str, Any]]:
    """Every type that loads, by id; a broken plug-in is logged and left out."""
    found = []
    for type_id in sorted(known_types()):
        try:
            found.append(describe(load(type_id)))
        except (SluiceError, ImportError, AttributeError):
            log.exception("destination type %r cannot be loaded", type_id)
    return found


def destination_type(type_id: str) -> dict[str, Any]:
    """One type; raises `NotFound` when no type has this id."""
    if type_id not in known_types():
        raise NotFound(f"No destination type {type_id!r}")
    return describe(load(type_id))
