"""A profile's computed-trait values and audience memberships, compared with what was emitted.

Values come from the states at the log's clock; an audience's condition reads the profile's
traits (the identity graph's `profile_traits`), its computed traits and the counters of its
event conditions. A change is what differs from the last emitted value (`computed_values`) or
membership (`audience_members`, no row meaning "not a member").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from sluice.engage import states
from sluice.engage.definitions import (
    COMPUTED_PREFIX,
    Definitions,
    compare,
    event_spec_key,
)
from sluice.identity.tables import IdentityDb
from sluice.workspace.model import AudienceCondition

if TYPE_CHECKING:
    from sluice.engage.book import StateBook

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Evaluation:
    profile: str
    key: str
    value: Any
    audience: bool


def trait_keys(cond: AudienceCondition) -> set[str]:
    keys = {t.trait for t in cond.traits}
    for group in cond.groups:
        keys |= trait_keys(group)
    return keys


def computed_values(defs: Definitions, book: StateBook, profile: str, clock: int) -> dict[str, Any]:
    """Each computed trait's value (None: no event counts; a count with no event is 0)."""
    return {
        t.key: states.value(
            t.kind, book.state(profile, COMPUTED_PREFIX + t.key), clock, t.within_days
        )
        for t in defs.traits
    }


def holds(
    cond: AudienceCondition,
    audience: str,
    path: str,
    traits: Mapping[str, Any],
    computed: Mapping[str, Any],
    book: StateBook,
    profile: str,
    clock: int,
) -> bool:
    results: list[bool] = []
    for t in cond.traits:
        results.append(compare(t.op, traits.get(t.trait), t.value))
    for c in cond.computed_traits:
        results.append(compare(c.op, computed.get(c.computed_trait), c.value))
    for i, e in enumerate(cond.events):
        key = event_spec_key(audience, path, i)
        count = states.value("count", book.state(profile, key), clock, e.within_days)
        results.append(compare(e.op, count, e.count))
    for j, group in enumerate(cond.groups):
        results.append(
            holds(group, audience, f"{path}groups[{j}].", traits, computed, book, profile, clock)
        )
    return all(results) if cond.match == "all" else any(results)


def evaluate(
    db: IdentityDb,
    space: str,
    defs: Definitions,
    book: StateBook,
    profiles: Sequence[str],
    clock: int,
) -> list[Evaluation]:
    emitted_values: dict[tuple[str, str], Any] = {}
    members: set[tuple[str, str]] = set()
    traits: dict[str, dict[str, Any]] = {}
    wanted_traits = set().union(*(trait_keys(a.condition) for a in defs.audiences))
    for start in range(0, len(profiles), 500):
        chunk = list(profiles[start : start + 500])
        clause, params = db.in_list(chunk)
        for profile, key, text in db.execute(
            "SELECT profile_id, trait_key, value FROM computed_values WHERE space = ?"
            f" AND profile_id {clause}",
            [space, *params],
        ):
            emitted_values[(profile, key)] = msgspec.json.decode(text)
        for profile, key in db.execute(
            "SELECT profile_id, audience_key FROM audience_members WHERE space = ?"
            f" AND profile_id {clause} AND member = 1",
            [space, *params],
        ):
            members.add((profile, key))
        if wanted_traits:
            keys_clause, keys = db.in_list(sorted(wanted_traits))
            for profile, key, text in db.execute(
                "SELECT profile_id, key, value FROM profile_traits WHERE space = ?"
                f" AND profile_id {clause} AND key {keys_clause}",
                [space, *params, *keys],
            ):
                traits.setdefault(profile, {})[key] = msgspec.json.decode(text)
    kinds = {t.key: t.kind for t in defs.traits}
    changes: list[Evaluation] = []
    for profile in profiles:
        computed = computed_values(defs, book, profile, clock)
        for key, value in computed.items():
            before = emitted_values.get((profile, key), _MISSING)
            if before is _MISSING:
                if value is None or (kinds[key] == "count" and value == 0):
                    continue  # never had a value: nothing to say
            elif _same(before, value):
                continue
            changes.append(Evaluation(profile, key, value, False))
        own = traits.get(profile, {})
        for audience in defs.audiences:
            member = holds(
                audience.condition, audience.key, "", own, computed, book, profile, clock
            )
            if member != ((profile, audience.key) in members):
                changes.append(Evaluation(profile, audience.key, member, True))
    return changes


def _same(a: Any, b: Any) -> bool:
    # JSON round trip: 2 and 2.0 are one value, True and 1 are not.
    return (type(a) is type(b) and bool(a == b)) or (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )
