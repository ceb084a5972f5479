"""Checks against Segment's definitions, as Segment's settings form and mapping editor make
them: which settings are credentials, and the first setting or mapping field that breaks the
definition (named, for the error's path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.bridge.catalog import CatalogEntry

# Settings whose names say they are credentials, besides those typed as passwords.
SECRET_NAME_PARTS = ("key", "secret", "token", "password", "auth")


def secret_names(entry: CatalogEntry) -> frozenset[str]:
    """Settings that are credentials: typed as passwords, or named like one."""
    properties: Mapping[str, Any] = entry.auth_fields.get("properties", {})
    return frozenset(
        name
        for name, field in properties.items()
        if field.get("format") == "password"
        or any(part in name.lower() for part in SECRET_NAME_PARTS)
    )


def settings_error(entry: CatalogEntry, raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first setting that breaks the definition's fields: (name, why), or None.

    Checked like Segment's settings form: required fields present, known names only, the JSON
    type and the choices; `oauth` holds an OAuth destination's client and tokens."""
    schema = entry.auth_fields
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if raw.get(name) in (None, ""):
            return name, f"{entry.name} needs the setting {name!r} ({_title(properties, name)})"
    for name, value in raw.items():
        if name == "oauth":
            if not isinstance(value, Mapping):
                return name, "must be an object (access_token, refresh_token, clientId, ...)"
            continue
        field = properties.get(name)
        if field is None:
            known = ", ".join(sorted(properties)) or "none"
            return name, f"{entry.name} has no setting {name!r} (its settings: {known})"
        problem = _type_error(field, value)
        if problem is not None:
            return name, problem
    return None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _type_error(field: Mapping[str, Any], value: Any) -> str | None:
    if value is None:
        return None
    kinds = field.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    allowed = tuple(t for k in kinds for t in _JSON_TYPES.get(k, ()))
    if allowed and (not isinstance(value, allowed) or (bool not in allowed and value is True)):
        return f"expected {' or '.join(kinds)}, got {type(value).__name__}"
    choices = field.get("enum")
    if choices and value not in choices:
        return f"must be one of {', '.join(map(str, choices))}"
    return None


def _title(properties: Mapping[str, Any], name: str) -> str:
    return str(properties.get(name, {}).get("title") or name)


def mapping_error(entry: CatalogEntry, action: str, mapping: Mapping[str, Any]) -> str | None:
    """A mapping that names a field the action does not have: why, or None."""
    properties: Mapping[str, Any] = entry.actions[action].fields.get("properties", {})
    unknown = sorted(set(mapping) - set(properties))
    if unknown:
        return (
            f"{entry.name} / {entry.actions[action].title} has no field {unknown[0]!r}"
            f" (its fields: {', '.join(sorted(properties))})"
        )
    return None
