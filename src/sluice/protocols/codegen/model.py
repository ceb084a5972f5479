"""A tracking plan read as the calls a client makes: one `Call` per planned event (its newest
version), identify and group, each with the type of its properties or traits, in a form the
Python and TypeScript writers share (Typewriter's idea: the plan becomes typed functions).

JSON Schema says more than a type system can (patterns, bounds, formats): those stay the
server's to check (and `sluice protocols check`'s); here they become documentation. Local
`$ref`s (`#/definitions/...`) are followed; anything else a type cannot say is `any`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from sluice.protocols.plan import PlanRules, parse_rules

CallKind = Literal["track", "page", "screen", "identify", "group"]
_NOTES = ("format", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
          "minLength", "maxLength", "minItems", "maxItems", "multipleOf")  # fmt: skip


@dataclass
class TypeRef:
    """A type: `kind` is string, number, integer, boolean, null, any, array (`item`), object
    (`name`, `fields`), map (an object without planned properties), literal (`values`), union
    (`members`)."""

    kind: str
    item: TypeRef | None = None
    name: str = ""
    fields: list[Field] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    members: list[TypeRef] = field(default_factory=list)


@dataclass
class Field:
    name: str  # as on the wire
    type: TypeRef
    required: bool
    description: str = ""


@dataclass
class Call:
    kind: CallKind
    event: str  # the track event's name, the page/screen name, "" for identify and group
    version: int  # sent as `context.protocols.event_version` when above 1
    description: str
    type: TypeRef  # an object (or a map when none are planned): the properties, or the traits
    words: list[str]  # the event's name in words, for the writers' naming rules


@dataclass
class ClientPlan:
    plan_id: str
    name: str
    calls: list[Call]
    objects: list[TypeRef]  # every object type, each after the objects it uses


def client_plan(plan_id: str, name: str, rules: dict[str, Any]) -> ClientPlan:
    """The calls of a plan's rules (as in the workspace file; `PlanError` when they are bad)."""
    parsed: PlanRules = parse_rules(rules)
    newest: dict[tuple[str, str], Any] = {}
    for event in parsed.events:
        key = (event.type, event.name)
        if key not in newest or event.version > newest[key].version:
            newest[key] = event
    builder = _Builder()
    calls: list[Call] = []
    for (kind, event_name), event in newest.items():
        words = _words(event_name) or ["unnamed"]
        if kind != "track":
            words = [kind, *words]
        section = builder.section(event.rules, "properties", words)
        calls.append(Call(kind, event_name, event.version, event.description or "", section, words))  # type: ignore[arg-type]
    for kind, schema in (("identify", parsed.identify), ("group", parsed.group)):
        if schema is not None:
            words = [kind, "traits"]
            calls.append(Call(kind, "", 1, "", builder.section(schema, "traits", words), [kind]))  # type: ignore[arg-type]
    return ClientPlan(plan_id, name, calls, builder.objects)


def _words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z][a-z]*|[0-9]+|[A-Z]+(?![a-z])", text)]


def pascal(words: list[str]) -> str:
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[:1].isalpha() else "T" + name


class _Builder:
    def __init__(self) -> None:
        self.objects: list[TypeRef] = []
        self._names: set[str] = set()
        self._root: Any = {}

    def section(self, schema: Any, section: str, words: list[str]) -> TypeRef:
        """The type of `properties.<section>` of a whole-message rule (an object)."""
        self._root = schema
        outer = schema.get("properties") if isinstance(schema, dict) else None
        inner = outer.get(section) if isinstance(outer, dict) else None
        built = self.type(inner if isinstance(inner, dict) else {}, words, 0)
        return built if built.kind in ("object", "map") else TypeRef("map")

    def type(self, schema: Any, words: list[str], depth: int) -> TypeRef:
        if depth > 20 or not isinstance(schema, dict):
            return TypeRef("any")
        schema = self._resolve(schema)
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            values = [
                v for v in schema["enum"] if isinstance(v, str | int | float | bool) or v is None
            ]
            if len(values) == len(schema["enum"]):
                return TypeRef("literal", values=values)
        if "const" in schema and (
            schema["const"] is None or isinstance(schema["const"], str | int | float | bool)
        ):
            return TypeRef("literal", values=[schema["const"]])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                members = [self.type(s, [*words, str(i + 1)], depth + 1)
                           for i, s in enumerate(schema[key])]  # fmt: skip
                return members[0] if len(members) == 1 else TypeRef("union", members=members)
        kinds = schema.get("type")
        names = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
        if not names:
            if isinstance(schema.get("properties"), dict):
                names = ["object"]
            else:
                return TypeRef("any")
        members = [self._one(str(n), schema, words, depth) for n in dict.fromkeys(names)]
        return members[0] if len(members) == 1 else TypeRef("union", members=members)

    def _one(self, name: str, schema: dict[str, Any], words: list[str], depth: int) -> TypeRef:
        if name == "array":
            items = schema.get("items")
            item = (
                self.type(items, [*words, "item"], depth + 1)
                if isinstance(items, dict)
                else TypeRef("any")
            )
            return TypeRef("array", item=item)
        if name == "object":
            if not isinstance(schema.get("properties"), dict) or not schema["properties"]:
                return TypeRef("map")
            return self._object(schema, words, depth)
        if name in ("string", "number", "integer", "boolean", "null"):
            return TypeRef(name)
        return TypeRef("any")

    def _object(self, schema: dict[str, Any], words: list[str], depth: int = 0) -> TypeRef:
        name = pascal(words)
        base, n = name, 2
        while name in self._names:
            name, n = f"{base}{n}", n + 1
        self._names.add(name)
        listed = schema.get("required")
        required = set(listed) if isinstance(listed, list) else set()
        fields = []
        for prop, sub in (schema.get("properties") or {}).items():
            sub = self._resolve(sub) if isinstance(sub, dict) else sub
            kind = self.type(sub, [*words, *(_words(str(prop)) or ["x"])], depth + 1)
            fields.append(Field(str(prop), kind, prop in required, _describe(sub)))
        built = TypeRef("object", name=name, fields=fields)
        self.objects.append(built)  # after the objects its fields made
        return built

    def _resolve(self, schema: dict[str, Any]) -> Any:
        """Follow a local `$ref` (`#/definitions/x`); an unknown one is `any` ({})."""
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 20:
            target: Any = self._root
            ref = schema["$ref"]
            if not ref.startswith("#"):
                return {}
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            schema, seen = target if isinstance(target, dict) else {}, seen + 1
        return schema


def _is_literal(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _describe(schema: Any) -> str:
    """The schema's description and the constraints a type cannot say."""
    if not isinstance(schema, dict):
        return ""
    notes = [f"{k}: {schema[k]}" for k in _NOTES if k in schema]
    text = str(schema.get("description") or "").strip()
    if notes:
        text = f"{text} ({', '.join(notes)})" if text else ", ".join(notes)
    return " ".join(text.split())
