"""A profile's computed-trait values and audience memberships, compared with what was emitted.

Values come from the states at the log's clock; an audience's condition reads the profile's
traits (the identity graph's `profile_traits`), its computed traits and the counters of its
event conditions. A change is what differs from the last emitted value (`computed_values`) or
membership (`audience_members`, no row meaning "not a member"). The Judge reads those once for
a step's profiles and keeps them in memory, since a profile is judged at each of its events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from sluice.engage.definitions import (
    COMPUTED_PREFIX,
    Definitions,
    compare,
    event_spec_key,
)
from sluice.identity.tables import IdentityDb
from sluice.workspace.model_engage import AudienceCondition

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
        t.key: book.value(profile, COMPUTED_PREFIX + t.key, t.kind, clock, t.within_days)
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
        count = book.value(profile, key, "count", clock, e.within_days)
        results.append(compare(e.op, count, e.count))
    for j, group in enumerate(cond.groups):
        results.append(
            holds(group, audience, f"{path}groups[{j}].", traits, computed, book, profile, clock)
        )
    return all(results) if cond.match == "all" else any(results)


class Judge:
    """What was last sent for some profiles, read once and then kept in memory: each `judge`
    compares a profile's values at a clock with it, and takes the differences as sent.

    Within a step a profile is judged at each of its events, so the last sent value must move
    with each judgement, not only at the step's end. `merge` drops the loser's (it is no more);
    its memberships are held by the winner until the winner is judged: a membership only the
    loser had then ends with an exit when the merged profile is not a member (a destination
    must not keep the loser's ids as members), and is taken over when it is.
    """

    def __init__(self, db: IdentityDb, space: str, defs: Definitions, book: StateBook) -> None:
        self.db = db
        self.space = space
        self.defs = defs
        self.book = book
        self.values: dict[tuple[str, str], Any] = {}  # (profile, trait) -> value last sent
        self.members: set[tuple[str, str]] = set()  # (profile, audience) sent as a member
        self.held: set[tuple[str, str]] = set()  # memberships of merged profiles, not judged
        self.traits: dict[str, dict[str, Any]] = {}
        self.loaded: set[str] = set()
        self.kinds = {t.key: t.kind for t in defs.traits}
        self.wanted_traits = sorted(set().union(*(trait_keys(a.condition) for a in defs.audiences)))

    def load(self, profiles: Iterable[str]) -> None:
        db, space = self.db, self.space
        todo = sorted(set(profiles) - self.loaded)
        self.loaded.update(todo)
        for start in range(0, len(todo), 500):
            chunk = todo[start : start + 500]
            clause, params = db.in_list(chunk)
            for profile, key, text in db.execute(
                "SELECT profile_id, trait_key, value FROM computed_values WHERE space = ?"
                f" AND profile_id {clause}",
                [space, *params],
            ):
                self.values[(profile, key)] = msgspec.json.decode(text)
            for profile, key in db.execute(
                "SELECT profile_id, audience_key FROM audience_members WHERE space = ?"
                f" AND profile_id {clause} AND member = 1",
                [space, *params],
            ):
                self.members.add((profile, key))
            if self.wanted_traits:
                keys_clause, keys = db.in_list(self.wanted_traits)
                for profile, key, text in db.execute(
                    "SELECT profile_id, key, value FROM profile_traits WHERE space = ?"
                    f" AND profile_id {clause} AND key {keys_clause}",
                    [space, *params, *keys],
                ):
                    self.traits.setdefault(profile, {})[key] = msgspec.json.decode(text)

    def merge(self, loser: str, winner: str) -> None:
        self.load((loser, winner))
        for audience in self.defs.audiences:
            key = (loser, audience.key)
            if key in self.members or key in self.held:
                self.held.add((winner, audience.key))
            self.members.discard(key)
            self.held.discard(key)
        for trait in self.defs.traits:
            self.values.pop((loser, trait.key), None)

    def judge(self, profile: str, clock: int) -> list[Evaluation]:
        """The profile's changes since what was last sent, now taken as sent."""
        if profile not in self.loaded:
            self.load((profile,))
        book = self.book
        changes: list[Evaluation] = []
        computed = computed_values(self.defs, book, profile, clock)
        for key, value in computed.items():
            before = self.values.get((profile, key), _MISSING)
            if before is _MISSING:
                if value is None or (self.kinds[key] == "count" and value == 0):
                    continue  # never had a value: nothing to say
            elif _same(before, value):
                continue
            self.values[(profile, key)] = value
            changes.append(Evaluation(profile, key, value, False))
        own = self.traits.get(profile, {})
        for audience in self.defs.audiences:
            pair = (profile, audience.key)
            member = holds(
                audience.condition, audience.key, "", own, computed, book, profile, clock
            )
            was = pair in self.members
            held = pair in self.held
            self.held.discard(pair)
            if member != was or (held and not member):
                # Not a member while a merged profile was: its exit (the ids it was sent
                # with are the merged profile's now).
                changes.append(Evaluation(profile, audience.key, member, True))
            if member:
                self.members.add(pair)
            else:
                self.members.discard(pair)
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
