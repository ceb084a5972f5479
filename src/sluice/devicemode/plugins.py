"""A device-mode destination document, checked and turned into what analytics.js loads.

analytics-next reads two things of the settings for an Actions destination in the browser
(`remote-loader` in analytics-next): a `remotePlugins` entry `{name, creationName, libraryName,
url, settings}` — it loads `url`, calls `window[libraryName]` with `settings` (the destination's
settings plus `subscriptions`: `{partnerAction, subscribe, mapping, enabled}`, which the browser
runtime evaluates with Segment's own FQL and mapping kit) — and an `integrations[creationName]`
entry with the settings. That entry carries no `browser` component type: analytics-next would
otherwise also try to load it as a classic integration.

Checked here as Segment's settings form would, naming the field: the settings against the
definition's fields (required, known, JSON type, choices), each mapping's action, trigger (FQL,
by Sluice's parser, the subset Segment's `destination-subscriptions` takes) and mapping (the
mapping kit, fields the action has). Filters and delivery options do not apply in the page, so
a document that sets them is refused rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import msgspec

from sluice.devicemode.catalog import BrowserDestination, DeviceCatalog, FieldInfo
from sluice.errors import SluiceError
from sluice.fql import compile_trigger
from sluice.mapping import validate as validate_mapping

BUNDLE_ROOT = "/next-integrations/actions/"


class DeviceModeConfigError(SluiceError):
    """A device-mode destination document cannot be used; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Doc(msgspec.Struct, kw_only=True):
    id: str
    type: str
    mode: str = "device"
    name: str | None = None
    enabled: bool = True
    sources: list[str] = []
    settings: dict[str, Any] = {}
    filters: list[Any] = []
    mappings: list[dict[str, Any]] = []
    consent_categories: list[str] = []
    delivery: dict[str, Any] = {}


class _Mapping(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: str
    name: str | None = None
    trigger: str | None = None
    mapping: dict[str, Any] | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class DevicePlugin:
    """One enabled device-mode destination, ready for a source's settings."""

    destination_id: str
    enabled: bool
    sources: frozenset[str]  # empty: every source
    definition: BrowserDestination
    creation_name: str
    settings: dict[str, Any]
    subscriptions: list[dict[str, Any]]
    consent_categories: tuple[str, ...] = field(default=())

    def serves(self, source_id: str) -> bool:
        return self.enabled and (not self.sources or source_id in self.sources)

    def remote_plugin(self, origin: str) -> dict[str, Any]:
        """The `remotePlugins` entry; `origin` is this server as the browser reaches it."""
        return {
            "name": self.definition.name,
            "creationName": self.creation_name,
            "libraryName": self.definition.library,
            "url": origin + BUNDLE_ROOT + self.definition.bundle,
            "settings": {**self.settings, "subscriptions": self.subscriptions},
        }

    def integration(self) -> dict[str, Any]:
        """The `integrations[creationName]` entry (no `browser` component: see above)."""
        entry: dict[str, Any] = {**self.settings, "versionSettings": {"componentTypes": []}}
        if self.consent_categories:
            entry["consentSettings"] = {"categories": list(self.consent_categories)}
        return entry


def _raise(path: str, message: str) -> NoReturn:
    raise DeviceModeConfigError(path, message)


def compile_device(raw: Mapping[str, Any], catalog: DeviceCatalog) -> DevicePlugin:
    """Check one `mode: device` destination document; raises `DeviceModeConfigError`."""
    try:
        doc = msgspec.convert(dict(raw), _Doc)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        _raise(where.rstrip("`").lstrip(".") or "destination", message)
    try:
        definition = catalog.resolve(doc.type)
    except SluiceError as exc:
        _raise("type", str(exc))
    if doc.filters:
        _raise("filters", "a device-mode destination runs in the page: filters do not apply")
    if doc.delivery:
        _raise("delivery", "a device-mode destination runs in the page: Sluice does not deliver it")
    settings = _checked_settings(definition, doc.settings)
    if doc.mappings:
        subscriptions = [
            _subscription(definition, m, f"mappings[{i}]") for i, m in enumerate(doc.mappings)
        ]
    else:
        subscriptions = _defaults(definition)
    return DevicePlugin(
        destination_id=doc.id,
        enabled=doc.enabled,
        sources=frozenset(doc.sources),
        definition=definition,
        creation_name=doc.name or definition.name,
        settings=settings,
        subscriptions=subscriptions,
        consent_categories=tuple(doc.consent_categories),
    )


def _checked_settings(definition: BrowserDestination, raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(definition.settings))
    if unknown:
        known = ", ".join(sorted(definition.settings)) or "none"
        _raise(f"settings.{unknown[0]}", f"{definition.name} has no such setting (known: {known})")
    out: dict[str, Any] = {}
    for key, info in definition.settings.items():
        if key in raw:
            _check_value(f"settings.{key}", info, raw[key])
            out[key] = raw[key]
        elif info.default is not None:
            out[key] = info.default
        elif info.required:
            _raise(f"settings.{key}", f"required by {definition.name} ({info.label or key})")
    return out


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "password": (str,),
    "text": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
}


def _check_value(path: str, info: FieldInfo, value: Any) -> None:
    wanted = _JSON_TYPES.get(info.type)
    values = value if info.multiple and isinstance(value, list) else [value]
    for item in values:
        if wanted is not None and (
            not isinstance(item, wanted) or (bool not in wanted and isinstance(item, bool))
        ):
            _raise(path, f"should be {info.type}, not {type(item).__name__}")
        if info.choices and item not in info.choices:
            _raise(path, f"{item!r} is not one of {info.choices}")


def _subscription(definition: BrowserDestination, raw: dict[str, Any], path: str) -> dict[str, Any]:
    try:
        doc = msgspec.convert(raw, _Mapping)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        _raise(path + where.rstrip("`"), message)
    action = definition.actions.get(doc.action)
    if action is None:
        _raise(f"{path}.action", f"{definition.name} has no action {doc.action!r} "
                                  f"(known: {', '.join(sorted(definition.actions))})")  # fmt: skip
    preset = next((p for p in definition.presets if p.partner_action == doc.action), None)
    trigger = doc.trigger or (preset.subscribe if preset else None) or action.default_subscription
    if not trigger:
        _raise(f"{path}.trigger", "a trigger is required (this action has no default)")
    try:
        compile_trigger(trigger)
    except SluiceError as exc:
        _raise(f"{path}.trigger", str(exc))
    mapping = doc.mapping
    if mapping is None:
        mapping = preset.mapping if preset else action.default_mapping()
    unknown = sorted(set(mapping) - set(action.fields))
    if unknown:
        _raise(f"{path}.mapping.{unknown[0]}", f"action {doc.action!r} has no such field")
    try:
        validate_mapping(mapping, liquid=True)  # Segment's kit runs it in the page
    except SluiceError as exc:
        _raise(f"{path}.mapping", str(exc))
    return {
        "partnerAction": doc.action,
        "name": doc.name or (preset.name if preset else action.title),
        "subscribe": trigger,
        "mapping": mapping,
        "enabled": doc.enabled,
    }


def _defaults(definition: BrowserDestination) -> list[dict[str, Any]]:
    """No mapping written: the definition's presets, else every action with a default
    subscription (Amplitude's session plugin has no preset; Segment subscribes it so)."""
    if definition.presets:
        return [
            {"partnerAction": p.partner_action, "name": p.name, "subscribe": p.subscribe,
             "mapping": p.mapping, "enabled": True}
            for p in definition.presets if p.subscribe
        ]  # fmt: skip
    return [
        {"partnerAction": key, "name": action.title, "subscribe": action.default_subscription,
         "mapping": action.default_mapping(), "enabled": True}
        for key, action in definition.actions.items() if action.default_subscription
    ]  # fmt: skip


def compile_all(
    docs: Sequence[Mapping[str, Any]], catalog: DeviceCatalog
) -> tuple[list[DevicePlugin], dict[str, str]]:
    """Every device-mode document compiled: (plugins, {destination id: why it is left out})."""
    plugins: list[DevicePlugin] = []
    errors: dict[str, str] = {}
    for raw in docs:
        try:
            plugins.append(compile_device(raw, catalog))
        except DeviceModeConfigError as exc:
            errors[str(raw.get("id"))] = str(exc)
    return plugins, errors
