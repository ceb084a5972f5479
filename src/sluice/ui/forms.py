"""A destination's settings form, generated from its `Settings` Struct, and read back.

The Struct is the single description of a destination's settings (STYLE.md: "the UI form and
docs table are generated from it"), so a new destination gets a form without UI code. Each
field becomes an input by its type; the submitted form becomes the `settings` mapping of the
workspace document, leaving out what was left empty so the destination's defaults apply.
Whether the values are right is not decided here: the same checks as `sluice apply` run on the
result.

A setting the destination marks secret (`secret_settings`, the list delivery redacts by; or a
text setting named like one, for plug-ins that do not say) is a password input that is never
filled in: a saved secret does not go back to the browser. Left empty, the saved value stays
(`keep_secrets`); an optional one is removed only by its own checkbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import inspect

from sluice.destinations.base import Destination

SECRET_NAME = re.compile(r"(secret|password|token|api_key|key)$")
CLEAR_PREFIX = "clear."  # `clear.settings.<name>`: the box that removes a saved optional secret
ADVANCED = frozenset({"endpoint"})
HELP = {
    "endpoint": "Optional: send to this base URL instead of the service's own (a proxy, a test"
    " server).",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One input of the form: `kind` is text, secret, bool, choice, number, lines, pairs or json."""

    name: str
    label: str
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    help: str = ""
    advanced: bool = False
    default: Any = None  # what applies when left empty (Segment's definitions say)
    depends_on: str = ""  # JSON of Segment's condition for showing it (ui.js applies it)

    def shown(self, settings: Mapping[str, Any]) -> str:
        """The current value as the input shows it."""
        value = settings.get(self.name)
        if value is None:
            return ""
        if self.kind == "lines" and isinstance(value, list):
            return "\n".join(str(v) for v in value)
        if self.kind == "pairs" and isinstance(value, dict):
            return "\n".join(f"{k}: {v}" for k, v in value.items())
        if self.kind == "json":
            return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()
        if self.kind == "bool":
            return "on" if value else ""
        return str(value)


class FormError(ValueError):
    """An input that cannot be read (e.g. invalid JSON); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _kind(t: inspect.Type) -> tuple[str, tuple[str, ...]]:
    if isinstance(t, inspect.UnionType):
        others = [x for x in t.types if not isinstance(x, inspect.NoneType)]
        if len(others) == 1:
            return _kind(others[0])
        return "json", ()
    if isinstance(t, inspect.StrType):
        return "text", ()
    if isinstance(t, inspect.BoolType):
        return "bool", ()
    if isinstance(t, inspect.IntType | inspect.FloatType):
        return "number", ()
    if isinstance(t, inspect.LiteralType):
        return "choice", tuple(str(v) for v in t.values)
    if isinstance(t, inspect.ListType) and isinstance(t.item_type, inspect.StrType):
        return "lines", ()
    if (
        isinstance(t, inspect.DictType)
        and isinstance(t.key_type, inspect.StrType)
        and isinstance(t.value_type, inspect.StrType)
    ):
        return "pairs", ()
    return "json", ()


def settings_fields(cls: type[Destination]) -> list[Field]:
    """The form's fields, required ones first, the advanced `endpoint` last."""
    info = inspect.type_info(cls.Settings)
    assert isinstance(info, inspect.StructType)
    fields = []
    for f in info.fields:
        kind, choices = _kind(f.type)
        if kind == "text" and (f.name in cls.secret_settings or SECRET_NAME.search(f.name)):
            kind = "secret"
        label = f.name.replace("_", " ").capitalize()
        fields.append(
            Field(
                f.name,
                label,
                kind,
                f.required,
                choices,
                HELP.get(f.name, _default_help(kind)),
                f.name in ADVANCED,
            )
        )
    return sorted(fields, key=lambda f: (f.advanced, not f.required))


def _default_help(kind: str) -> str:
    if kind == "lines":
        return "One per line."
    if kind == "pairs":
        return "One per line, as `Name: value`."
    if kind == "json":
        return "JSON."
    return ""


def read_settings(fields: list[Field], form: Mapping[str, str]) -> dict[str, Any]:
    """The `settings` mapping a submitted form describes (`form` keys are `settings.<name>`)."""
    settings: dict[str, Any] = {}
    for field in fields:
        raw = form.get(f"settings.{field.name}", "")
        if field.kind == "bool":
            if raw:
                settings[field.name] = True
            elif field.required:
                settings[field.name] = False
            continue
        text = raw.strip()
        if not text:
            continue
        if field.kind == "lines":
            settings[field.name] = [line.strip() for line in text.splitlines() if line.strip()]
        elif field.kind == "pairs":
            settings[field.name] = _pairs(field.name, text)
        elif field.kind == "number":
            settings[field.name] = _number(field.name, text)
        elif field.kind == "json":
            try:
                settings[field.name] = msgspec.json.decode(text)
            except msgspec.DecodeError as exc:
                raise FormError(field.name, f"not valid JSON ({exc})") from None
        else:
            settings[field.name] = raw if field.kind == "secret" else text
    return settings


def keep_secrets(
    fields: list[Field],
    submitted: dict[str, Any],
    saved: Mapping[str, Any],
    form: Mapping[str, str],
) -> dict[str, Any]:
    """`submitted` with each secret left empty set to its saved value, unless its clear box is
    checked: the form never shows a secret, so an empty field means "unchanged"."""
    kept = dict(submitted)
    for field in fields:
        name = field.name
        if field.kind != "secret" or name in kept or saved.get(name) in (None, ""):
            continue
        if form.get(f"{CLEAR_PREFIX}settings.{name}") and not field.required:
            continue
        kept[name] = saved[name]
    return kept


def _pairs(name: str, text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise FormError(name, f"line {number}: expected `Name: value`")
        pairs[key.strip()] = value.strip()
    return pairs


def _number(name: str, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise FormError(name, f"{text!r} is not a number") from None
