"""A source's tracking plan applied to one normalised event, as Segment's Protocols does:
standard controls first (unplanned event, unplanned properties or traits, the event's own
schema), then the common schema; what was omitted or violated is written on the event under
`context.protocols`, the way Segment writes it.

`Enforcer.check` returns None for an event the plan has nothing to say about (the common case:
one dict lookup and the rule's fast check, `fastpath.py`, on the raw fields), else an `Outcome`
for the collector to record.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
from msgspec import Raw

from sluice.protocols.plan import CompiledPlan, Versions
from sluice.protocols.schema import Rule, Violation
from sluice.protocols.settings import Enforcement

UNPLANNED = "Unplanned event"
_decode = msgspec.json.decode


class Outcome(NamedTuple):
    """What the plan did to one event (already written on it under `context.protocols`)."""

    label: str  # what violations are counted under: the event name, or the call type
    violations: list[Violation]
    omitted: list[str]
    blocked: str | None  # why, when the event must not be stored


class Enforcer:
    """One source's plan and settings."""

    __slots__ = ("plan", "settings", "source_id")

    def __init__(self, source_id: str, plan: CompiledPlan, settings: Enforcement) -> None:
        self.source_id, self.plan, self.settings = source_id, plan, settings

    def check(self, item: dict[str, Any]) -> Outcome | None:
        """Validate `item` (changing it when properties are omitted); None: nothing to say."""
        plan, settings = self.plan, self.settings
        call = item["type"]
        label = call
        rule: Rule | None = None
        unplanned_policy = violation_policy = "allow"
        if call == "track":
            label = item["event"]
            versions = plan.events.get(("track", label))
            if versions is None:
                if settings.unplanned_events == "block":
                    self._decode(item)
                    return self._finish(item, label, [], [], [], UNPLANNED)
            else:
                rule = _pick(versions, item)
                unplanned_policy = settings.unplanned_properties
                violation_policy = settings.violations
        elif call == "identify" or call == "group":
            rule = plan.identify if call == "identify" else plan.group
            unplanned_policy = settings.unplanned_traits
            violation_policy = settings.traits_violations
        elif call == "page" or call == "screen":
            name = item.get("name")
            if type(name) is Raw:  # normalisation leaves `name` raw
                name = item["name"] = _decode(name)
            label = name if isinstance(name, str) and name else call
            versions = plan.events.get((call, name if isinstance(name, str) else ""))
            if versions is not None:
                rule = _pick(versions, item)
                violation_policy = settings.violations
        common = plan.common
        if rule is None and common is None:
            return None
        # The fast checks read the raw fields as they are: a valid event is stored as received.
        strict = unplanned_policy == "omit"
        if (rule is None or (rule.fast is not None and rule.fast.valid(item, strict))) and (
            common is None or (common.fast is not None and common.fast.valid(item, False))
        ):
            return None
        self._decode(item)
        if (
            (rule is None or _valid(rule, item))
            and (common is None or _valid(common, item))
            and (unplanned_policy == "allow" or rule is None or not _unplanned(rule, item))
        ):
            return None
        violations: list[Violation] = []
        omitted: list[str] = []
        omitted_on_violation: list[str] = []
        if rule is not None:
            if unplanned_policy == "omit":
                omitted = _omit(item, rule.section, _unplanned(rule, item))
            found = [] if _valid(rule, item) else rule.violations(item)
            violations += found
            if found and violation_policy == "block":
                return self._finish(item, label, violations, omitted, [], "Violations")
            if found and violation_policy == "omit":
                omitted_on_violation += _omit(item, rule.section, _fields(found, rule.section))
        if common is not None and not _valid(common, item):
            found = common.violations(item)
            violations += found
            if found and settings.common_violations == "block":
                return self._finish(item, label, violations, omitted, omitted_on_violation,
                                    "Common schema violations")  # fmt: skip
            if found and settings.common_violations == "omit":
                section = "traits" if call in ("identify", "group") else "properties"
                omitted_on_violation += _omit(item, section, _fields(found, section))
        return self._finish(item, label, violations, omitted, omitted_on_violation, None)

    def _decode(self, item: dict[str, Any]) -> None:
        """Decode the raw fields the plan's schemas look at, for fastjsonschema."""
        # The collector leaves a batch item's fields as raw JSON until they are needed (they are
        # written to the log as received): a schema over the whole message needs them decoded.
        fields = self.plan.fields
        for key, value in item.items():
            if type(value) is Raw and (fields is None or key in fields):
                item[key] = _decode(value)

    def _finish(
        self,
        item: dict[str, Any],
        label: str,
        violations: list[Violation],
        omitted: list[str],
        omitted_on_violation: list[str],
        blocked: str | None,
    ) -> Outcome:
        # A copy of `context`: a batch's items may share the envelope's context object.
        context = item.get("context")
        if type(context) is Raw:  # left raw when no schema looks at it
            context = _decode(context)
        context = dict(context) if isinstance(context, dict) else {}
        mark = context.get("protocols")
        mark = dict(mark) if isinstance(mark, dict) else {}
        if omitted:
            mark["omitted"] = omitted
        if omitted_on_violation:
            mark["omitted_on_violation"] = omitted_on_violation
        mark["sourceId"] = self.source_id
        if violations:
            mark["violations"] = violations
        context["protocols"] = mark
        item["context"] = context
        return Outcome(label, violations, omitted + omitted_on_violation, blocked)


def _valid(rule: Rule, item: dict[str, Any]) -> bool:
    try:
        rule.check(item)
    except ValueError:  # fastjsonschema's JsonSchemaException
        return False
    return True


def _pick(versions: Versions, item: dict[str, Any]) -> Rule:
    """The rule of the version the event asks for (`context.protocols.event_version`)."""
    if len(versions[1]) == 1:
        return versions[0]
    context = item.get("context")
    if isinstance(context, dict):
        mark = context.get("protocols")
        if isinstance(mark, dict):
            version = mark.get("event_version")
            if type(version) is int and version in versions[1]:
                return versions[1][version]
    return versions[0]


def _unplanned(rule: Rule, item: dict[str, Any]) -> list[str]:
    values = item.get(rule.section)
    if not isinstance(values, dict):
        return []
    planned = rule.planned
    return [key for key in values if key not in planned]


def _fields(violations: list[Violation], section: str) -> list[str]:
    """The top-level property (or trait) names the violations are about."""
    prefix = section + "."
    names: list[str] = []
    for violation in violations:
        field = violation["field"]
        if field.startswith(prefix):
            name = field[len(prefix) :].split(".", 1)[0]
            if name not in names:
                names.append(name)
    return names


def _omit(item: dict[str, Any], section: str, names: list[str]) -> list[str]:
    values = item.get(section)
    if not names or not isinstance(values, dict):
        return []
    gone = [name for name in names if name in values]
    if gone:
        item[section] = {k: v for k, v in values.items() if k not in gone}
    return gone
