"""Identity resolution, as Segment's flat matching does it, on an in-memory graph.

For each event (one call per collection: users, accounts) the profiles that own any of its
identifiers are found. None: a new profile. One: the identifiers join it. Several: they are
merged into the oldest. Before that, the result is checked against the rules: when it would
hold more values of a type than the type's limit (counting only values seen within the type's
window), the event's lowest-priority identifier is demoted (dropped from the event) and the
match is recomputed (Segment's demote-and-retry); a merge that would make a profile of more than
`max_merge_identities` identifiers is refused the same way, and counted. A single identifier
always resolves, so every event with one lands on exactly one profile.

`Graph` is either the whole graph (tests, the reference) or the part of it one consumer step
touches, loaded from the tables beforehand; `changes` says what to write back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from sluice.identity.extract import IdKey
from sluice.identity.rules import Rules, TypeRule

PREFIXES = {"users": "use_", "accounts": "acc_"}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_CHARS = 27
TIME_CHARS = 7  # base 36 (digits and capitals: the same order under any collation)
# "Last seen" moves by at least this much: windows are days long, and writing the row of every
# identifier at each event would cost most of a step's time. It is kept only for the types
# whose rule has a window (the only reader in resolution): an event of a known visitor then
# writes nothing to the graph at all, and a returning visitor costs one row (its event index)
# rather than three random pages. A profile's `updated_ms` is the last change of its identity
# (created, an identifier added, a merge); readers take the newer of it and its last event.
SEEN_RESOLUTION_MS = 3_600_000
# Base 36 by table (a profile id is made at every event that may create one): 3 + 2 + 2 digits.
_B36_2 = [_ALPHABET[i // 36] + _ALPHABET[i % 36] for i in range(36**2)]
_B36_3 = [_ALPHABET[i] + b for i in range(36) for b in _B36_2]
_36_4, _36_7 = 36**4, 36**7
# Each digest byte → one base-62 character (byte mod 62: a slight bias, harmless for ids).
_BASE62 = bytes(_ALPHABET[b % 62].encode()[0] for b in range(256))


def profile_id(
    space: str, collection: str, message_id: str, at_ms: int, salt: int | None = None
) -> str:
    """`use_` + 27 characters derived from the first event: its time (in seconds, 7 base-36
    characters, so ids sort by creation as Segment's KSUIDs do), then 20 base-62 characters
    of a digest of the space and its message id. A rebuild from the log names every profile as
    before (`salt`: the event's seq, when a repeated message id already named a profile).

    Sorting by time keeps a step's new profiles together at the end of every index keyed by
    profile id (profiles, identities by profile, traits, profile_events): with random ids
    each new row lands on another page of a large table, and writing those pages back was
    most of a step's cost past the page cache."""
    text = f"{space}\x00{collection}\x00{message_id}" + ("" if salt is None else f"\x00{salt}")
    digest = hashlib.blake2b(text.encode(), digest_size=ID_CHARS - TIME_CHARS).digest()
    s = max(at_ms, 0) // 1000 % _36_7
    stamp = _B36_3[s // _36_4] + _B36_2[s // 1296 % 1296] + _B36_2[s % 1296]
    return PREFIXES.get(collection, "use_") + stamp + digest.translate(_BASE62).decode()


@dataclass(slots=True)
class IdRow:
    """An identifier's row. Its first sighting (source, message, time) is known only for a row
    made in memory: a stored row's is never rewritten, so loading leaves it out."""

    profile: str
    last_seen_ms: int
    source_id: str = ""
    first_message_id: str = ""
    first_seen_ms: int = 0


@dataclass(slots=True)
class ProfileRow:
    collection: str
    first_seq: int
    created_ms: int
    updated_ms: int
    first_message_id: str
    first_source_id: str
    merged_into: str | None = None


@dataclass(frozen=True, slots=True)
class Merge:
    seq: int
    loser: str
    winner: str
    message_id: str
    reason: str
    at_ms: int


@dataclass(slots=True)
class Changes:
    """What processing did since the last `take`: rows to write and counts to add."""

    ids: set[IdKey] = field(default_factory=set)
    profiles: set[str] = field(default_factory=set)
    merges: list[Merge] = field(default_factory=list)
    demoted: int = 0  # identifiers dropped from events by limits or the guard
    refused: int = 0  # merges refused by the merge-size guard
    refusals: list[str] = field(default_factory=list)  # what each refusal was, for the log
    forward: dict[str, str] = field(default_factory=dict)  # loser → winner of these merges

    def root(self, profile: str) -> str:
        """Where a profile named during these changes lives now (after their merges)."""
        while profile in self.forward:
            profile = self.forward[profile]
        return profile


@dataclass(slots=True)
class Seen:
    """One event as resolution needs it."""

    seq: int
    message_id: str
    source_id: str
    now_ms: int


GUARD = "guard"


class Graph:
    def __init__(self, space: str, rules: Rules) -> None:
        self.space = space
        self.rules = rules
        self.ids: dict[IdKey, IdRow] = {}
        self.members: dict[str, set[IdKey]] = {}  # live (root) profile → its identifiers
        self.profiles: dict[str, ProfileRow] = {}
        self.taken: set[str] = set()  # profile ids that exist but are not loaded
        # As loaded from the tables (what writing back compares with): identifier → profile,
        # profile → merged_into. Absent: not stored yet.
        self.stored_ids: dict[IdKey, str] = {}
        self.stored_profiles: dict[str, str | None] = {}
        self.created: set[str] = set()  # profiles made by this graph (none of their rows stored)
        self.changes = Changes()
        self._rules: dict[str, TypeRule] = {}
        self._windows = any(rule.window_ms is not None for rule in rules.types.values())

    def take(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    def resolve(self, collection: str, keys: list[IdKey], seen: Seen) -> str | None:
        """Attach the event's identifiers of one collection; its profile (None: no ids)."""
        if not keys:
            return None
        again = self.known(keys, seen.now_ms)
        return again if again is not None else self.attach(collection, keys, seen)

    def attach(self, collection: str, keys: list[IdKey], seen: Seen) -> str:
        """`resolve` for identifiers that are not all known on one profile (`known` said
        None): new ones join, profiles merge, rules demote."""
        ids = self.ids
        keys = list(keys)
        refused = False
        while True:
            matched = sorted({ids[k].profile for k in keys if k in ids})
            problem = self._problem(matched, keys, seen.now_ms)
            if problem is None:
                break
            if problem == GUARD and not refused:
                refused = True
                self.changes.refused += 1
                self.changes.refusals.append(
                    f"seq {seen.seq} ({seen.message_id}) would merge {', '.join(matched)}"
                )
            # Demote the incoming identifier of lowest priority (ties: the greatest value).
            victim = max(keys, key=lambda k: (self.rules.priority_key(k[1]), k[2]))
            keys.remove(victim)
            self.changes.demoted += 1
        if not matched:
            profile = self._new_profile(collection, seen)
        elif len(matched) == 1:
            profile = matched[0]
        else:
            profile = self._merge(matched, keys, seen)
        members = self.members[profile]
        changed = len(matched) != 1  # a new profile, or a merge
        for key in keys:
            row = self.ids.get(key)
            if row is None:
                self.ids[key] = IdRow(
                    profile, seen.now_ms, seen.source_id, seen.message_id, seen.now_ms
                )
                members.add(key)
                changed = True
            elif self._windows and self._seen_later(key[1], row, seen.now_ms):
                row.last_seen_ms = seen.now_ms
            else:
                continue
            self.changes.ids.add(key)
        if changed:
            self.profiles[profile].updated_ms = seen.now_ms
            self.changes.profiles.add(profile)
        return profile

    def known(self, keys: list[IdKey], now_ms: int) -> str | None:
        """The common case, settled without the general path: every identifier stored and on
        one profile, so nothing can grow or merge and only "last seen" may move. None when
        the event is not such a case."""
        ids = self.ids
        rows: list[IdRow] = []
        for key in keys:
            row = ids.get(key)
            if row is None or (rows and row.profile != rows[0].profile):
                return None
            rows.append(row)
        if self._windows:
            for key, row in zip(keys, rows, strict=True):
                if self._seen_later(key[1], row, now_ms):
                    row.last_seen_ms = now_ms
                    self.changes.ids.add(key)
        return rows[0].profile

    def _seen_later(self, id_type: str, row: IdRow, now_ms: int) -> bool:
        """Whether an identifier's "last seen" should move to now: its type has a window and
        the time moved by the resolution at least."""
        return (
            now_ms - row.last_seen_ms >= SEEN_RESOLUTION_MS
            and self._rule(id_type).window_ms is not None
        )

    # --- rules -------------------------------------------------------------------------------
    def _problem(self, matched: list[str], keys: list[IdKey], now_ms: int) -> str | None:
        """Why attaching `keys` to `matched` breaks a rule: an id type, GUARD, or None."""
        if len(matched) == 1 and all(k in self.ids for k in keys):
            return None  # nothing new on one profile: nothing can grow
        union: set[IdKey] = set(keys)
        for profile in matched:
            union |= self.members[profile]
        fresh = set(keys)
        counts = self._counts(union, fresh, now_ms)
        rule = self._rule
        over = [id_type for id_type, count in counts.items() if count > rule(id_type).limit]
        for id_type in sorted(over, key=self.rules.priority_key):
            before = max(
                (self._counts(self.members[p], set(), now_ms).get(id_type, 0) for p in matched),
                default=0,
            )
            if counts[id_type] > before:  # a profile already past a new limit may stay
                return id_type
        if len(matched) > 1 and len(union) > self.rules.max_merge_identities:
            return GUARD
        return None

    def _rule(self, id_type: str) -> TypeRule:
        """The rules' rule for a type, remembered (asked for each identifier counted)."""
        rule = self._rules.get(id_type)
        if rule is None:
            rule = self._rules[id_type] = self.rules.rule(id_type)
        return rule

    def _counts(self, keys: set[IdKey], fresh: set[IdKey], now_ms: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        if not self._windows:  # no type has a window: every identifier counts
            for key in keys:
                counts[key[1]] = counts.get(key[1], 0) + 1
            return counts
        for key in keys:
            window = self._rule(key[1]).window_ms
            if (
                window is not None
                and key not in fresh
                and self.ids[key].last_seen_ms < now_ms - window
            ):
                continue
            counts[key[1]] = counts.get(key[1], 0) + 1
        return counts

    # --- effects -----------------------------------------------------------------------------
    def _new_profile(self, collection: str, seen: Seen) -> str:
        profile = profile_id(self.space, collection, seen.message_id, seen.now_ms)
        if profile in self.profiles or profile in self.taken:
            profile = profile_id(self.space, collection, seen.message_id, seen.now_ms, seen.seq)
        self.profiles[profile] = ProfileRow(
            collection, seen.seq, seen.now_ms, seen.now_ms, seen.message_id, seen.source_id
        )
        self.changes.profiles.add(profile)
        self.created.add(profile)
        self.members[profile] = set()
        return profile

    def _merge(self, matched: list[str], keys: list[IdKey], seen: Seen) -> str:
        """Merge every matched profile into the oldest one; record each merge with its reason."""
        winner = min(matched, key=lambda p: (self.profiles[p].first_seq, p))
        on_winner = _names(k for k in keys if self.ids.get(k) and self.ids[k].profile == winner)
        for loser in matched:
            if loser == winner:
                continue
            on_loser = _names(k for k in keys if k in self.ids and self.ids[k].profile == loser)
            moved = self.members.pop(loser)
            for key in moved:
                self.ids[key].profile = winner
            self.members[winner] |= moved
            self.changes.ids |= moved
            self.profiles[loser].merged_into = winner
            self.changes.profiles.add(loser)
            self.changes.forward[loser] = winner
            reason = (
                f"one event carried {on_loser} (of {loser}) and {on_winner} (of {winner});"
                f" {winner} is older, so it stays"
            )
            self.changes.merges.append(
                Merge(seen.seq, loser, winner, seen.message_id, reason, seen.now_ms)
            )
        return winner


def _names(keys: Iterable[IdKey]) -> str:
    return ", ".join(f"{k[1]}={k[2]}" for k in sorted(keys)) or "nothing"
