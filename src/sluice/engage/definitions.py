"""Computed traits and audiences: checked (for `sluice apply`) and compiled for the consumer.

A workspace's `computed_traits:` and `audiences:` become a list of `Spec`s, each one mergeable
state per profile (states.py): one per computed trait, and one per event condition of an
audience ("performed X at least twice in 7 days" is an internal counter). The definitions'
fingerprint is what the consumer's state was built with: a change recomputes it from the log.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.fql import FqlError, Predicate, compile_filter
from sluice.workspace.errors import WorkspaceError
from sluice.workspace.model import Workspace
from sluice.workspace.model_engage import (
    ENGAGE_SOURCE_ID,
    Audience,
    AudienceCondition,
    ComputedTrait,
)

ORDERED_OPS = (">", ">=", "<", "<=")
COMPUTED_PREFIX = "ct:"
EVENT_PREFIX = "ev:"


@dataclass(frozen=True, slots=True)
class Spec:
    """One per-profile state: which events feed it, with what value, over which window."""

    key: str  # "ct:<trait key>" or "ev:<audience key>:<condition path>"
    kind: str
    event: str | None
    where: str | None
    property: tuple[str, ...] | None
    window_days: int | None
    predicate: Predicate | None = field(default=None, compare=False, hash=False)

    def matches(self, body: Mapping[str, Any]) -> bool:
        if self.event is not None and body.get("event") != self.event:
            return False
        return self.predicate is None or self.predicate(body)

    def value_of(self, body: Mapping[str, Any]) -> Any:
        """The event's property this state keeps (None: the event does not count for it)."""
        if self.property is None:
            return None
        value: Any = body.get("properties")
        for part in self.property:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


@dataclass(frozen=True, slots=True)
class Definitions:
    specs: tuple[Spec, ...] = ()
    traits: tuple[ComputedTrait, ...] = ()
    audiences: tuple[Audience, ...] = ()
    fingerprint: str = ""

    @property
    def empty(self) -> bool:
        return not self.specs and not self.audiences

    def spec(self, key: str) -> Spec:
        return next(s for s in self.specs if s.key == key)


def compile_definitions(
    traits: Sequence[ComputedTrait], audiences: Sequence[Audience]
) -> Definitions:
    """The consumer's form of checked definitions (`check_engage` passed)."""
    specs = [_spec(COMPUTED_PREFIX + t.key, t.kind, t.event, t.where, t.property, t.within_days)
             for t in traits]  # fmt: skip
    for audience in audiences:
        if not audience.enabled:
            continue
        for path, group, i in _event_paths(audience.condition):
            cond = group.events[i]
            key = event_spec_key(audience.key, path, i)
            specs.append(_spec(key, "count", cond.event, cond.where, None, cond.within_days))
    enabled = tuple(a for a in audiences if a.enabled)
    doc = msgspec.json.encode([list(traits), list(enabled)])
    return Definitions(tuple(specs), tuple(traits), enabled, hashlib.sha256(doc).hexdigest()[:16])


def event_spec_key(audience: str, path: str, index: int) -> str:
    return f"{EVENT_PREFIX}{audience}:{path}events[{index}]"


def _spec(
    key: str,
    kind: str,
    event: str | None,
    where: str | None,
    prop: str | None,
    window: int | None,
) -> Spec:
    predicate = compile_filter(where) if where else None
    path = tuple(prop.split(".")) if prop else None
    return Spec(key, kind, event, where, path, window, predicate)


def _event_paths(
    cond: AudienceCondition, path: str = ""
) -> Iterator[tuple[str, AudienceCondition, int]]:
    for i in range(len(cond.events)):
        yield path, cond, i
    for j, group in enumerate(cond.groups):
        yield from _event_paths(group, f"{path}groups[{j}].")


# --- checks for `sluice apply` ------------------------------------------------------------------
def check_engage(ws: Workspace) -> None:
    """Raise WorkspaceError naming the field of the first invalid definition."""
    for i, source in enumerate(ws.sources):
        if source.id == ENGAGE_SOURCE_ID:
            raise WorkspaceError(
                f"{ENGAGE_SOURCE_ID!r} is the internal source of computed traits and audiences"
                " (list it in a destination's sources to receive them)",
                path=f"sources[{i}].id",
            )
    trait_keys: dict[str, int] = {}
    for i, trait in enumerate(ws.computed_traits):
        path = f"computed_traits[{i}]"
        if trait.key in trait_keys:
            raise WorkspaceError(
                f"Duplicate key {trait.key!r} (also computed_traits[{trait_keys[trait.key]}])",
                path=f"{path}.key",
            )
        trait_keys[trait.key] = i
        if trait.kind == "count" and trait.property is not None:
            raise WorkspaceError("A count takes no property", path=f"{path}.property")
        if trait.kind != "count" and trait.property is None:
            raise WorkspaceError(
                f"Expected the property a {trait.kind} reads (e.g. `total` for properties.total)",
                path=f"{path}.property",
            )
        _check_where(f"{path}.where", trait.where)
    audience_keys: dict[str, int] = {}
    for i, audience in enumerate(ws.audiences):
        path = f"audiences[{i}]"
        if audience.key in audience_keys:
            raise WorkspaceError(
                f"Duplicate key {audience.key!r} (also audiences[{audience_keys[audience.key]}])",
                path=f"{path}.key",
            )
        if audience.key in trait_keys:
            raise WorkspaceError(
                f"Key {audience.key!r} is also computed_traits[{trait_keys[audience.key]}]'s"
                " (both are sent as a trait of that name)",
                path=f"{path}.key",
            )
        audience_keys[audience.key] = i
        _check_condition(f"{path}.condition", audience.condition, trait_keys)


def _check_where(path: str, where: str | None) -> None:
    if where is None:
        return
    try:
        compile_filter(where)
    except FqlError as exc:
        raise WorkspaceError(str(exc), path=path) from None


def _check_condition(path: str, cond: AudienceCondition, trait_keys: Mapping[str, int]) -> None:
    if not (cond.traits or cond.computed_traits or cond.events or cond.groups):
        raise WorkspaceError(
            "Expected at least one condition (traits, computed_traits, events or groups)",
            path=path,
        )
    for i, t in enumerate(cond.traits):
        _check_compare(f"{path}.traits[{i}]", t.op, t.value)
    for i, c in enumerate(cond.computed_traits):
        if c.computed_trait not in trait_keys:
            raise WorkspaceError(
                f"Unknown computed trait {c.computed_trait!r}",
                path=f"{path}.computed_traits[{i}].computed_trait",
            )
        _check_compare(f"{path}.computed_traits[{i}]", c.op, c.value)
    for i, e in enumerate(cond.events):
        _check_where(f"{path}.events[{i}].where", e.where)
    for i, group in enumerate(cond.groups):
        _check_condition(f"{path}.groups[{i}]", group, trait_keys)


def _check_compare(path: str, op: str, value: Any) -> None:
    if op in ("exists", "not_exists"):
        if value is not None:
            raise WorkspaceError(f"`{op}` takes no value", path=f"{path}.value")
        return
    if op in ORDERED_OPS:
        ok = isinstance(value, str) or (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
        if not ok:
            raise WorkspaceError(
                f"Expected a number or a string to compare with `{op}`, got {value!r}",
                path=f"{path}.value",
            )
        return
    if not (value is None or isinstance(value, str | bool | int)) and not (
        isinstance(value, float) and math.isfinite(value)
    ):
        raise WorkspaceError(
            f"Expected a string, number, boolean or null, got {type(value).__name__}",
            path=f"{path}.value",
        )


def compare(op: str, actual: Any, expected: Any) -> bool:
    """A condition's comparison; values of different kinds are unequal and never ordered."""
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if op == "=":
        return _same(actual, expected)
    if op == "!=":
        return not _same(actual, expected)
    ordered: Callable[[Any, Any], bool] = _ORDER[op]
    if _is_number(actual) and _is_number(expected):
        return ordered(actual, expected)
    if isinstance(actual, str) and isinstance(expected, str):
        return ordered(actual, expected)
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
