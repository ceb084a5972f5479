"""Segment's destinations (`segment:<slug>`, run by the bridge) in the UI: the catalogue, the
settings form generated from a definition's auth fields, and "Test connection".

The catalogue is the installed bridge's `catalog.json` (`location.catalog()`: read once, again
when `sluice bridge install` rewrites it), so listing never starts Node. Each definition's
`authentication.fields` arrive as JSON Schema (title, description, type, `format: password`,
`enum`, `default`, `required`) and become the same `Field`s a native destination's `Settings`
Struct gives (`forms.py`), so the one template draws both. A setting typed as a password, or
named like a credential (`secret_names`, the list delivery redacts by), is a secret: never sent
back to the browser, kept when left empty. What a form submits is checked as everywhere, by
compiling the destination document (`settings_error` names the field).

An OAuth destination (`needs_oauth`) also gets `settings.oauth`'s keys as fields of their own
(`oauth.<key>` in the form, a nested object in the document).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from sluice.bridge import location
from sluice.bridge.catalog import CatalogEntry
from sluice.bridge.checks import secret_names
from sluice.bridge.destination import BridgedDestination
from sluice.destinations.base import Destination as DestinationClass
from sluice.errors import SluiceError
from sluice.ui.forms import Field, keep_secrets, read_settings, settings_fields

INSTALL_NOTE = (
    "`sluice bridge install` adds 150+ of Segment's own destinations (Braze, Customer.io,"
    " Iterable, Klaviyo...), run from Segment's open-source code. It needs Node.js 18.17+."
)
GROUPS = (
    ("supported", "Supported", "HTTP only, API-key or basic authentication."),
    (
        "needs_oauth",
        "Needs OAuth",
        "Usable with a client id, client secret and refresh token obtained from the provider"
        " (the authorize flow is not in Segment's package).",
    ),
    ("unsupported", "Not supported", "Cannot run in Sluice, for the reason given."),
)
OAUTH = "oauth"
# `settings.oauth` as Segment's refresh loop reads it: (key, label, kind).
OAUTH_FIELDS = (
    ("clientId", "OAuth client ID", "text"),
    ("clientSecret", "OAuth client secret", "secret"),
    ("refresh_token", "OAuth refresh token", "secret"),
    ("access_token", "OAuth access token", "secret"),
    ("refresh_token_url", "OAuth refresh token URL", "text"),
)
OAUTH_HELP = "OAuth: obtain these from the provider; a refreshed token is kept in the store."
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


@dataclass(frozen=True, slots=True)
class SegmentCard:
    """One of Segment's destinations as the catalogue lists it."""

    type: str
    name: str
    description: str
    support: str
    reason: str
    zero_config: bool
    actions: int
    search: str  # every name it answers to, lower-cased: what the search box matches


@dataclass(frozen=True, slots=True)
class SegmentCatalog:
    groups: tuple[tuple[str, str, str, tuple[SegmentCard, ...]], ...] = ()  # key, title, blurb
    note: str = ""  # why there is nothing to list, or what is missing to run them
    package: str = ""


def segment_catalog() -> SegmentCatalog:
    """The installed catalogue by support class, or a note saying how to install it."""
    try:
        catalog = location.catalog()
    except SluiceError:
        return SegmentCatalog(note=INSTALL_NOTE)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        return SegmentCatalog(note=f"The bridge's catalogue cannot be read ({exc}). {INSTALL_NOTE}")
    groups = []
    for key, title, blurb in GROUPS:
        entries = sorted(catalog.of_class(key), key=lambda e: e.name.casefold())
        groups.append((key, title, blurb, tuple(_card(e) for e in entries)))
    note = ""
    if shutil.which("node") is None:
        note = "Node.js is not on PATH here: install Node.js 18.17+ to run these destinations."
    return SegmentCatalog(tuple(groups), note, catalog.doc.package)


def _card(entry: CatalogEntry) -> SegmentCard:
    names = (entry.name, entry.slug, entry.type, entry.definition_slug or "", entry.metadata_id)
    return SegmentCard(
        type=entry.type,
        name=entry.name,
        description=plain(entry.description or ""),
        support=entry.support,
        reason=entry.reason,
        zero_config=entry.zero_config,
        actions=len(entry.actions),
        search=" ".join(n for n in names if n).casefold(),
    )


def plain(text: str) -> str:
    """A definition's description as plain text: `[label](url)` becomes `label (url)`."""
    return MARKDOWN_LINK.sub(r"\1 (\2)", text).strip()


def is_bridged(cls: type[DestinationClass]) -> bool:
    return isinstance(cls, type) and issubclass(cls, BridgedDestination)


def entry_of(cls: type[DestinationClass]) -> CatalogEntry | None:
    if isinstance(cls, type) and issubclass(cls, BridgedDestination):
        return cls.entry
    return None


# --- the settings form ------------------------------------------------------------------------
def bridged_fields(entry: CatalogEntry) -> list[Field]:
    """One field per auth field of the definition (required ones first, otherwise in the
    definition's order), then `settings.oauth`'s keys for an OAuth destination."""
    properties: Mapping[str, Any] = entry.auth_fields.get("properties", {})
    required = set(entry.auth_fields.get("required", []))
    secrets = secret_names(entry)
    fields = []
    for name, spec in properties.items():
        kind, choices = _kind(spec)
        if kind == "text" and (name in secrets or spec.get("format") == "password"):
            kind = "secret"
        default = spec.get("default")
        help_text = plain(str(spec.get("description") or ""))
        if default not in (None, "") and kind != "secret" and name not in required:
            help_text = f"{help_text} Default: {_shown_default(default)}.".strip()
        label = str(spec.get("title") or name)
        condition = entry.auth_depends_on.get(name)
        if condition:
            help_text = f"{help_text} {condition_text(condition, properties)}".strip()
        fields.append(
            Field(
                name, label, kind, name in required, choices, help_text, default=default,
                depends_on=msgspec.json.encode(condition).decode() if condition else "",
            )
        )  # fmt: skip
    fields.sort(key=lambda f: not f.required)
    if entry.auth_scheme in ("oauth2", "oauth-managed"):
        for key, label, kind in OAUTH_FIELDS:
            fields.append(Field(f"{OAUTH}.{key}", label, kind, False, help=OAUTH_HELP))
    return fields


def condition_text(condition: Mapping[str, Any], properties: Mapping[str, Any]) -> str:
    """Segment's `depends_on` in words ("Applies when Mechanism is plain or scram.")."""
    parts = []
    for item in condition.get("conditions") or []:
        key = item.get("fieldKey")
        if not key:  # a condition on the sync mode, not on a field
            continue
        title = str((properties.get(key) or {}).get("title") or key)
        values = item.get("value")
        shown = " or ".join(
            _shown_default(v) for v in (values if isinstance(values, list) else [values])
        )
        verb = "is not" if item.get("operator") == "is_not" else "is"
        parts.append(f"{title} {verb} {shown or 'empty'}")
    joiner = " and " if condition.get("match") == "all" else " or "
    return f"Applies when {joiner.join(parts)}." if parts else ""


def condition_holds(condition: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """Whether Segment's `depends_on` holds for these values (ui.js applies the same rule
    in the browser); a condition on no field (the sync mode) holds."""
    checks = []
    for item in condition.get("conditions") or []:
        key = item.get("fieldKey")
        if not key:
            continue
        current = settings.get(key)
        wanted = item.get("value")
        values = wanted if isinstance(wanted, list) else [wanted]
        same = any(
            bool(current) is v if isinstance(v, bool) else _text(v) == _text(current)
            for v in values
        )
        checks.append(not same if item.get("operator") == "is_not" else same)
    if not checks:
        return True
    return all(checks) if condition.get("match") == "all" else any(checks)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _kind(spec: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    types = spec.get("type")
    kind_of = types if isinstance(types, str) else None
    if spec.get("enum"):
        return "choice", tuple(str(v) for v in spec["enum"])
    if kind_of == "boolean":
        return "bool", ()
    if kind_of in ("number", "integer"):
        return "number", ()
    if kind_of == "string":
        return "text", ()
    if kind_of == "array" and (spec.get("items") or {}).get("type") == "string":
        return "lines", ()
    return "json", ()


def _shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def form_fields(cls: type[DestinationClass]) -> list[Field]:
    entry = entry_of(cls)
    return bridged_fields(entry) if entry is not None else settings_fields(cls)


def shown_settings(cls: type[DestinationClass], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the form's fields name them (`oauth.<key>` flattened for bridged ones)."""
    if not is_bridged(cls):
        return dict(settings)
    flat = {k: v for k, v in settings.items() if k != OAUTH}
    oauth = settings.get(OAUTH)
    if isinstance(oauth, Mapping):
        flat.update({f"{OAUTH}.{k}": v for k, v in oauth.items()})
    return flat


def new_settings(cls: type[DestinationClass], fields: list[Field]) -> dict[str, Any]:
    """What a new destination's form starts with: the definition's defaults, as Segment's own
    settings form fills them in (none for a native type: its Struct's defaults apply)."""
    if not is_bridged(cls):
        return {}
    return {f.name: f.default for f in fields if f.default is not None and f.kind != "secret"}


def settings_from_form(
    cls: type[DestinationClass],
    fields: list[Field],
    raw: Mapping[str, str],
    saved: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `settings` a submitted form describes; with `saved` (an existing destination's),
    each secret left empty keeps its saved value (`keep_secrets`)."""
    if not is_bridged(cls):
        settings = read_settings(fields, raw)
        return keep_secrets(fields, settings, saved, raw) if saved is not None else settings
    flat = read_settings(fields, raw)
    for field in fields:
        if field.depends_on and not condition_holds(msgspec.json.decode(field.depends_on), flat):
            flat.pop(field.name, None)  # hidden by its condition: it does not apply
        elif field.kind == "bool" and field.name not in flat:
            flat[field.name] = False  # unchecked is off, not "whatever the default is"
        elif field.kind == "choice" and field.name in flat:
            flat[field.name] = _choice_value(cls, field.name, flat[field.name])
    if saved is not None:
        flat = keep_secrets(fields, flat, shown_settings(cls, saved), raw)
    return _nested(flat, fields, (saved or {}).get(OAUTH))


def _choice_value(cls: type[DestinationClass], name: str, chosen: Any) -> Any:
    """The enum value itself (a number stays a number)."""
    entry = entry_of(cls)
    spec = entry.auth_fields.get("properties", {}).get(name, {}) if entry else {}
    return next((v for v in spec.get("enum", []) if str(v) == chosen), chosen)


def _nested(flat: dict[str, Any], fields: list[Field], saved_oauth: Any) -> dict[str, Any]:
    """`oauth.<key>` fields back into `settings.oauth`, keeping saved keys the form has not."""
    prefix = f"{OAUTH}."
    settings = {k: v for k, v in flat.items() if not k.startswith(prefix)}
    form_keys = {f.name.removeprefix(prefix) for f in fields if f.name.startswith(prefix)}
    oauth = {
        k: v
        for k, v in (saved_oauth.items() if isinstance(saved_oauth, Mapping) else ())
        if k not in form_keys
    }
    oauth.update({k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix)})
    if oauth:
        settings[OAUTH] = oauth
    return settings


def with_base_url(delivery: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """`delivery.base_url` set from the form's Advanced field (empty: removed)."""
    options = {k: v for k, v in delivery.items() if k != "base_url"}
    if base_url.strip():
        options["base_url"] = base_url.strip()
    return options


# --- the mappings editor ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActionField:
    """One field of an action's mapping, as the mappings editor lists it."""

    name: str
    label: str
    type: str
    required: bool
    default: str  # JSON (often a mapping directive: {"@path": "$.userId"}); "" when none
    description: str
    condition: str = ""  # when Segment's form shows it ("Applies when ..."), "" always


@dataclass(frozen=True, slots=True)
class ActionFields:
    """One action of one of Segment's destinations, as the mappings editor shows it."""

    id: str
    title: str
    description: str
    fields: list[ActionField]
    defaults: str  # JSON: every field's default, the mapping Segment's editor starts from


def action_fields(cls: type[DestinationClass]) -> list[ActionFields]:
    """Per action of one of Segment's destinations, its fields; empty for a native one."""
    entry = entry_of(cls)
    if entry is None:
        return []
    listed = []
    for action_id, info in entry.actions.items():
        properties: Mapping[str, Any] = info.fields.get("properties", {})
        required = set(info.fields.get("required", []))
        fields = [
            ActionField(
                name=name,
                label=str(spec.get("title") or name),
                type=_type_name(spec),
                required=name in required,
                default=""
                if "default" not in spec
                else msgspec.json.encode(spec["default"]).decode(),
                description=plain(str(spec.get("description") or "")),
                condition=condition_text(info.depends_on.get(name) or {}, properties),
            )
            for name, spec in properties.items()
        ]
        defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
        listed.append(
            ActionFields(
                action_id, info.title, plain(info.description or ""), fields,
                msgspec.json.format(msgspec.json.encode(defaults), indent=2).decode(),
            )
        )  # fmt: skip
    return listed


def _type_name(spec: Mapping[str, Any]) -> str:
    kinds = spec.get("type")
    names = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if k and k != "null"]
    text = " or ".join(str(k) for k in names) or "any"
    return f"{text} ({', '.join(map(str, spec['enum']))})" if spec.get("enum") else text
