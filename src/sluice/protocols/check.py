"""`sluice protocols check`: a file of events (JSON Lines) checked against a plan, for CI, with
the collector's own code (normalisation, then the plan's enforcement), so what passes here is
what the server lets through untouched.

Every finding is a `Finding` naming the line: a line that is not JSON or not an event Sluice
would accept, an unplanned event, an unplanned property or trait, and each violation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import msgspec

from sluice.protocols.enforce import UNPLANNED, Enforcer
from sluice.protocols.plan import CompiledPlan
from sluice.protocols.settings import Enforcement
from sluice.spec.normalize import Rejected, make_envelope, normalize


class Finding(NamedTuple):
    line: int
    event: str  # the event's label (name or call type), "" when the line is not an event
    kind: str  # a violation type, "Unplanned event", "Unplanned property", "Invalid event"
    field: str
    description: str


def check_lines(
    plan: CompiledPlan,
    lines: Iterable[bytes],
    *,
    allow_unplanned_events: bool = False,
    allow_unplanned_properties: bool = False,
) -> Iterator[Finding]:
    """What the plan finds in each line (blank lines are skipped)."""
    settings = Enforcement(
        unplanned_events="allow" if allow_unplanned_events else "block",
        unplanned_properties="allow" if allow_unplanned_properties else "omit",
        unplanned_traits="allow" if allow_unplanned_properties else "omit",
    )
    enforcer = Enforcer("check", plan, settings)
    envelope = make_envelope(int(time.time() * 1000), None)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item: Any = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            yield Finding(number, "", "Invalid event", "", f"not JSON: {exc}")
            continue
        refused = normalize(item, envelope)
        if isinstance(refused, Rejected):
            yield Finding(
                number, "", "Invalid event", "", f"{refused.reason.value}: {refused.detail}"
            )
            continue
        outcome = enforcer.check(item)
        if outcome is None:
            continue
        if outcome.blocked == UNPLANNED:
            yield Finding(number, outcome.label, UNPLANNED, "", "not in the tracking plan")
        section = "traits" if item["type"] in ("identify", "group") else "properties"
        for name in outcome.omitted:  # violations are allowed: only unplanned keys are omitted
            yield Finding(number, outcome.label, "Unplanned property", f"{section}.{name}",
                          "not planned for this event")  # fmt: skip
        for violation in outcome.violations:
            yield Finding(number, outcome.label, violation["type"], violation["field"],
                          violation["description"])  # fmt: skip
