"""A tracking plan's rules in Segment's shape, checked and compiled.

The shape is the one Segment's Config API exports (`rules.global`, `rules.events[]` with `name`,
`version` and a JSON Schema under `rules`, `rules.identify`, `rules.group`), each schema over the
whole message as Segment writes them (`properties.properties.properties.<name>`). Page and Screen
rules are `events[]` entries with `type: page|screen`, keyed by the call's `name`.

A plan compiles once per content: `compile_plan` keeps the compiled plan of each distinct rule set
(by digest), so a workspace reload that leaves a plan unchanged does not compile it again.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import msgspec

from sluice.protocols.errors import PlanError
from sluice.protocols.schema import Rule

EventType = Literal["track", "page", "screen"]


class EventRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One event of the plan, at one version (`context.protocols.event_version`)."""

    name: str
    type: EventType = "track"
    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    description: str | None = None
    labels: dict[str, str] = {}
    rules: dict[str, Any] = {}


class PlanRules(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A plan's `rules`: the common schema (`global`), events, identify and group traits."""

    global_: dict[str, Any] | None = msgspec.field(default=None, name="global")
    events: list[EventRule] = []
    identify: dict[str, Any] | None = None
    group: dict[str, Any] | None = None


# (event type, name) -> (rule for calls without a known version, {version: rule})
Versions = tuple[Rule, dict[int, Rule]]


class CompiledPlan:
    """Every rule of one plan, compiled, looked up by call type and name."""

    __slots__ = ("common", "events", "fields", "group", "identify", "name", "plan_id")

    def __init__(self, plan_id: str, name: str, rules: PlanRules) -> None:
        self.plan_id, self.name = plan_id, name
        self.common = _rule(rules.global_, "properties", "global")
        self.identify = _rule(rules.identify, "traits", "identify")
        self.group = _rule(rules.group, "traits", "group")
        by_key: dict[tuple[str, str], dict[int, Rule]] = {}
        seen: dict[tuple[str, str, int], int] = {}
        for i, event in enumerate(rules.events):
            key = (event.type, event.name)
            if (key[0], key[1], event.version) in seen:
                raise PlanError(
                    f"{event.type} {event.name!r} version {event.version} is defined twice"
                    f" (also at events[{seen[(key[0], key[1], event.version)]}])",
                    path=f"events[{i}].version",
                )
            seen[(key[0], key[1], event.version)] = i
            if event.type == "track" and not event.name:
                raise PlanError("A track event needs a name", path=f"events[{i}].name")
            by_key.setdefault(key, {})[event.version] = _rule(
                event.rules, "properties", f"events[{i}].rules"
            ) or Rule({}, "properties")
        schemas = [r.schema for v in by_key.values() for r in v.values()]
        schemas += [r.schema for r in (self.common, self.identify, self.group) if r is not None]
        self.fields = _top_level_fields(schemas)
        # Without `event_version`, Segment's default is version 1: the oldest one here.
        self.events: dict[tuple[str, str], Versions] = {
            key: (versions[min(versions)], versions) for key, versions in by_key.items()
        }


_PLAIN = {"$schema", "$id", "$comment", "title", "description", "type", "properties", "required"}


def _top_level_fields(schemas: list[dict[str, Any]]) -> frozenset[str] | None:
    """The message fields the schemas look at, or None when one may look at any (then every
    field is decoded): the collector decodes only these from a batch item's raw JSON."""
    fields = {"properties", "traits"}  # unplanned properties and traits are looked up there
    for schema in schemas:
        if set(schema) - _PLAIN:
            return None
        fields.update(schema.get("properties") or ())
        fields.update(schema.get("required") or ())
    return frozenset(fields)


def _rule(schema: dict[str, Any] | None, section: str, path: str) -> Rule | None:
    if schema is None:
        return None
    try:
        return Rule(schema, section)
    except PlanError as exc:
        raise PlanError(exc.message, path=f"{path}.{exc.path}" if exc.path else path) from None


def parse_rules(rules: dict[str, Any]) -> PlanRules:
    """The `rules` mapping as typed Structs; `PlanError` names the field at fault."""
    try:
        return msgspec.convert(rules, PlanRules)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, at = text.partition(" - at `$")
        return_path = at.rstrip("`").lstrip(".")
        if message.startswith("Object contains unknown field"):
            field = message.split("`")[1]
            allowed = (
                "global, events, identify, group"
                if not return_path
                else ("name, type, version, description, labels, rules")
            )
            raise PlanError(
                f"Unknown field (expected one of: {allowed})",
                path=f"{return_path}.{field}".lstrip("."),
            ) from None
        raise PlanError(message.replace("`", ""), path=return_path) from None


_CACHE: dict[bytes, CompiledPlan] = {}


def compile_plan(plan_id: str, name: str, rules: dict[str, Any]) -> CompiledPlan:
    """The plan compiled, from the cache when the same rules were compiled before."""
    digest = hashlib.sha256(
        plan_id.encode()
        + b"\0"
        + name.encode()
        + b"\0"
        + msgspec.json.encode(rules, order="sorted")
    ).digest()
    compiled = _CACHE.get(digest)
    if compiled is None:
        compiled = CompiledPlan(plan_id, name, parse_rules(rules))
        _CACHE[digest] = compiled
    return compiled


def forget_except(keep: set[int]) -> None:
    """Drop compiled plans no longer in use (`keep`: ids of the plans in use)."""
    for digest, compiled in list(_CACHE.items()):
        if id(compiled) not in keep:
            del _CACHE[digest]
