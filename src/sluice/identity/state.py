"""The graph's rows in the tables: load what a step will touch, write back what it changed.

A step reads its events first, so it knows every identifier they carry: it loads those
identifiers' rows, then the profiles they point at with all their identifiers (the limits
count them), in a handful of queries, and resolves in memory. Writing back is a few
`executemany` calls, in an order that keeps `merged_into` pointing at live profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice.identity.extract import IdKey
from sluice.identity.graph import Changes, Graph, IdRow, ProfileRow, profile_id
from sluice.identity.rules import USERS
from sluice.identity.tables import Column, IdentityDb, PostgresIdentityDb

CHUNK = 500  # values per IN list on SQLite
_T, _B = "TEXT", "BIGINT"
# A stored identifier's first sighting is never rewritten: loading reads only these.
_ID_COLUMNS = "collection, id_type, id_value, profile_id, last_seen_ms"


@dataclass(slots=True)
class TraitWrite:
    value: str  # JSON
    source_id: str
    updated_ms: int
    seq: int


@dataclass(slots=True)
class StepWrites:
    """What a step adds beside the graph's own changes."""

    events: list[tuple[str, int]] = field(default_factory=list)  # (profile, seq)
    traits: dict[tuple[str, str], TraitWrite] = field(default_factory=dict)

    def trait(self, profile: str, key: str, write: TraitWrite) -> None:
        old = self.traits.get((profile, key))
        if old is None or (write.updated_ms, write.seq) > (old.updated_ms, old.seq):
            self.traits[(profile, key)] = write


def _chunks(values: Sequence[Any], db: IdentityDb) -> Iterable[Sequence[Any]]:
    if db.dialect == "postgres":
        yield values
        return
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


@dataclass(slots=True)
class StepEvent:
    """One event of a step as loading needs it: its message id, clock and identifiers."""

    message_id: str
    now_ms: int
    ids: list[IdKey]
    accounts: bool = True  # whether an account's identifier may be among `ids`


def load(db: IdentityDb, graph: Graph, events: Sequence[StepEvent]) -> None:
    """Load the rows a step's resolution reads: its identifiers, the profiles they point at,
    every identifier of the profiles whose limits the step checks or that it may merge, and
    which of the profile ids its events could create exist already.

    An event whose identifiers of a collection are all stored and on one profile changes
    nothing but "last seen" (resolution needs no more than those rows, not even the profile's);
    only an event with a new identifier, or with identifiers on several profiles, can grow or
    merge profiles, so only those profiles' rows and other identifiers are loaded, and only
    such an event may create a profile (whose id may be taken)."""
    space = graph.space
    events = [event for event in events if event.ids]
    keys = {key for event in events for key in event.ids}
    stored, stored_ids, members = graph.ids, graph.stored_ids, graph.members
    for row in _identities_by_key(db, space, keys):
        key = (row[0], row[1], row[2])
        stored[key] = IdRow(row[3], row[4])
        stored_ids[key] = row[3]
    grow: set[str] = set()
    candidates: set[str] = set()
    for event in events:
        ids = event.ids
        if len(ids) == 1:  # most events: one identifier, known (a returning visitor) or not
            held = stored.get(ids[0])
            if held is None:
                collection = ids[0][0]
                candidates.add(profile_id(space, collection, event.message_id, event.now_ms))
            continue
        if not event.accounts:
            groups: Iterable[tuple[str, list[IdKey]]] = ((USERS, ids),)
        else:
            groups = [(c, [k for k in ids if k[0] == c]) for c in {k[0] for k in ids}]
        for collection, mine in groups:
            profiles: set[str] = set()
            new = False
            for key in mine:
                held = stored.get(key)
                if held is None:
                    new = True
                else:
                    profiles.add(held.profile)
            if new or len(profiles) > 1:
                grow |= profiles
                if len(profiles) <= 1:
                    candidates.add(profile_id(space, collection, event.message_id, event.now_ms))
    # Only a profile that may grow or merge needs its identifiers (the limits count them).
    for key, held in stored.items():
        if held.profile in grow:
            members.setdefault(held.profile, set()).add(key)
    for row in _by_profile(db, _ID_COLUMNS, "identities", sorted(grow)):
        key = (row[0], row[1], row[2])
        if key not in stored:
            graph.ids[key] = IdRow(row[3], row[4])
            graph.stored_ids[key] = row[3]
            graph.members[row[3]].add(key)
    profile_columns = (
        "profile_id, collection, first_seq, created_ms, updated_ms, first_message_id,"
        " first_source_id, merged_into"
    )
    for row in _by_profile(db, profile_columns, "profiles", sorted(grow | candidates), space):
        if row[0] in grow:
            graph.profiles[row[0]] = ProfileRow(*row[1:])
            graph.stored_profiles[row[0]] = row[7]
        else:
            graph.taken.add(row[0])


def _by_profile(
    db: IdentityDb, columns: str, table: str, profiles: list[str], space: str | None = None
) -> list[tuple[Any, ...]]:
    """The rows of `table` of these profiles (and `space`): a profile id is unique across
    spaces (the space is in its digest), so that SQLite can search the profile index of
    `identities` rather than the whole space."""
    where = "" if space is None else " AND space = ?"
    extra = [] if space is None else [space]
    if isinstance(db, PostgresIdentityDb):
        return db.probe(columns, table, [("profile_id", _T)], [(p,) for p in profiles],
                        where, extra)  # fmt: skip
    rows: list[tuple[Any, ...]] = []
    for part in _chunks(profiles, db):
        clause, params = db.in_list(part)
        rows += db.execute(
            f"SELECT {columns} FROM {table} WHERE profile_id {clause}{where}", [*params, *extra]
        )
    return rows


def _identities_by_key(db: IdentityDb, space: str, keys: set[IdKey]) -> list[tuple[Any, ...]]:
    """The stored rows of these identifiers: one query on PostgreSQL (the keys as arrays),
    on SQLite one per (collection, type) and 500 values (its primary key, value last)."""
    if not keys:
        return []
    if isinstance(db, PostgresIdentityDb):
        return db.probe(_ID_COLUMNS, "identities", _ID_KEY[1:], sorted(keys),
                        " AND space = ?", [space])  # fmt: skip
    columns = _ID_COLUMNS
    by_type: dict[tuple[str, str], list[str]] = {}
    for collection, id_type, value in keys:
        by_type.setdefault((collection, id_type), []).append(value)
    rows: list[tuple[Any, ...]] = []
    for (collection, id_type), values in sorted(by_type.items()):
        values.sort()
        for part in _chunks(values, db):
            clause, params = db.in_list(part)
            rows += db.execute(
                f"SELECT {columns} FROM identities WHERE space = ? AND collection = ?"
                f" AND id_type = ? AND id_value {clause}",
                [space, collection, id_type, *params],
            )
    return rows


_ID_KEY: list[Column] = [("space", _T), ("collection", _T), ("id_type", _T), ("id_value", _T)]
_ID_NEW: list[Column] = [
    *_ID_KEY,
    ("profile_id", _T),
    ("source_id", _T),
    ("first_message_id", _T),
    ("first_seen_ms", _B),
    ("last_seen_ms", _B),
]
_PROFILE_KEY: list[Column] = [("space", _T), ("profile_id", _T)]
_PROFILE_NEW: list[Column] = [
    *_PROFILE_KEY,
    ("collection", _T),
    ("first_seq", _B),
    ("created_ms", _B),
    ("updated_ms", _B),
    ("first_message_id", _T),
    ("first_source_id", _T),
    ("merged_into", _T),
]
_TRAIT: list[Column] = [
    ("space", _T),
    ("profile_id", _T),
    ("key", _T),
    ("value", _T),
    ("source_id", _T),
    ("updated_ms", _B),
    ("seq", _B),
]
_EVENT: list[Column] = [("space", _T), ("profile_id", _T), ("seq", _B)]


def write(db: IdentityDb, graph: Graph, changes: Changes, writes: StepWrites) -> None:
    """Write a step's effects (inside the step's transaction): new rows inserted, stored rows
    updated in only the columns that moved (an index on a column left alone is not
    rewritten), one statement per kind on PostgreSQL."""
    space = graph.space
    new_ids: list[tuple[Any, ...]] = []
    moved_ids: list[tuple[Any, ...]] = []
    seen_ids: list[tuple[Any, ...]] = []
    for key in sorted(changes.ids):
        row = graph.ids[key]
        stored = graph.stored_ids.get(key)
        if stored is None:
            new_ids.append(
                (space, *key, row.profile, row.source_id, row.first_message_id,
                 row.first_seen_ms, row.last_seen_ms)
            )  # fmt: skip
        elif stored != row.profile:
            moved_ids.append((row.profile, row.last_seen_ms, space, *key))
        else:
            seen_ids.append((row.last_seen_ms, space, *key))
    db.copy_rows("identities", _ID_NEW, new_ids)
    db.update_rows("identities", [("profile_id", _T), ("last_seen_ms", _B)], _ID_KEY, moved_ids)
    db.update_rows("identities", [("last_seen_ms", _B)], _ID_KEY, seen_ids)
    new_profiles: list[tuple[Any, ...]] = []
    moved_profiles: list[tuple[Any, ...]] = []
    seen_profiles: list[tuple[Any, ...]] = []
    for profile in sorted(changes.profiles):
        p = graph.profiles[profile]
        if profile in graph.created:
            new_profiles.append(
                (space, profile, p.collection, p.first_seq, p.created_ms, p.updated_ms,
                 p.first_message_id, p.first_source_id, p.merged_into)
            )  # fmt: skip
        elif graph.stored_profiles[profile] != p.merged_into:
            moved_profiles.append((p.updated_ms, p.merged_into, space, profile))
        else:
            seen_profiles.append((p.updated_ms, space, profile))
    db.copy_rows("profiles", _PROFILE_NEW, new_profiles)
    db.update_rows(
        "profiles", [("updated_ms", _B), ("merged_into", _T)], _PROFILE_KEY, moved_profiles
    )
    db.update_rows("profiles", [("updated_ms", _B)], _PROFILE_KEY, seen_profiles)
    for merge in changes.merges:
        db.execute(
            "INSERT INTO merges (space, loser, winner, seq, message_id, reason, at_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                space,
                merge.loser,
                merge.winner,
                merge.seq,
                merge.message_id,
                merge.reason,
                merge.at_ms,
            ],
        )
        # Profiles merged into the loser earlier now point at the winner: one hop to a root.
        db.execute(
            "UPDATE profiles SET merged_into = ? WHERE merged_into = ?", [merge.winner, merge.loser]
        )
        db.execute(
            "INSERT INTO profile_traits (space, profile_id, key, value, source_id, updated_ms,"
            " seq) SELECT space, ?, key, value, source_id, updated_ms, seq FROM profile_traits"
            " WHERE space = ? AND profile_id = ?" + _NEWER_WINS,
            [merge.winner, space, merge.loser],
        )
        db.execute(
            "DELETE FROM profile_traits WHERE space = ? AND profile_id = ?", [space, merge.loser]
        )
    # One row per (live profile, key): the newest of the step's writes (two profiles the
    # step merged may both have set it), as one statement may not upsert a row twice.
    traits: dict[tuple[str, str], TraitWrite] = {}
    for (profile, name), w in writes.traits.items():
        root = (changes.root(profile), name)
        old = traits.get(root)
        if old is None or (w.updated_ms, w.seq) > (old.updated_ms, old.seq):
            traits[root] = w
    # A profile this step created has no stored traits: its rows need no conflict check.
    fresh: list[tuple[Any, ...]] = []
    existing: list[tuple[Any, ...]] = []
    for (profile, name), w in sorted(traits.items()):
        values = (space, profile, name, w.value, w.source_id, w.updated_ms, w.seq)
        (fresh if profile in graph.created else existing).append(values)
    db.copy_rows("profile_traits", _TRAIT, fresh)
    db.insert_rows("profile_traits", _TRAIT, existing, _NEWER_WINS)
    # No event can be indexed already: its seq is past the position this step moves on from,
    # and an event indexes one profile per collection (PostgreSQL: COPY, with no conflict check,
    # which searched each row's B-tree page once more). In key order: neighbouring rows go into
    # the same B-tree page one after the other.
    db.copy_rows("profile_events", _EVENT, [(space, *event) for event in sorted(writes.events)])


# The newest value of a trait wins, by event time then by log order: the same answer whatever
# order merges and steps bring them in.
_NEWER_WINS = (
    " ON CONFLICT (space, profile_id, key) DO UPDATE SET value = excluded.value,"
    " source_id = excluded.source_id, updated_ms = excluded.updated_ms, seq = excluded.seq"
    " WHERE (excluded.updated_ms, excluded.seq) > (profile_traits.updated_ms, profile_traits.seq)"
)
