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
from sluice.identity.graph import Changes, Graph, IdRow, ProfileRow
from sluice.identity.tables import IdentityDb

CHUNK = 500  # values per IN list on SQLite


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


def load(db: IdentityDb, graph: Graph, keys: Iterable[IdKey], candidates: Iterable[str]) -> None:
    """Load the rows of these identifiers, of their profiles, and which new-profile ids exist."""
    space = graph.space
    by_type: dict[tuple[str, str], list[str]] = {}
    for collection, id_type, value in set(keys):
        by_type.setdefault((collection, id_type), []).append(value)
    profiles: set[str] = set()
    for (collection, id_type), values in by_type.items():
        for part in _chunks(values, db):
            clause, params = db.in_list(part)
            rows = db.execute(
                "SELECT id_value, profile_id FROM identities WHERE space = ? AND collection = ?"
                f" AND id_type = ? AND id_value {clause}",
                [space, collection, id_type, *params],
            )
            profiles.update(row[1] for row in rows)
    ordered = sorted(profiles)
    for part in _chunks(ordered, db):
        clause, params = db.in_list(part)
        for row in db.execute(
            # By profile id alone (it is unique across spaces: the space is in its digest), so
            # that SQLite searches the profile index rather than the whole space.
            "SELECT collection, id_type, id_value, profile_id, source_id, first_message_id,"
            f" first_seen_ms, last_seen_ms FROM identities WHERE profile_id {clause}",
            params,
        ):
            key = (row[0], row[1], row[2])
            graph.ids[key] = IdRow(row[3], row[4], row[5], row[6], row[7])
            graph.members.setdefault(row[3], set()).add(key)
        for row in db.execute(
            "SELECT profile_id, collection, first_seq, created_ms, updated_ms, first_message_id,"
            " first_source_id, merged_into FROM profiles"
            f" WHERE space = ? AND profile_id {clause}",
            [space, *params],
        ):
            graph.profiles[row[0]] = ProfileRow(*row[1:])
            graph.members.setdefault(row[0], set())
    wanted = sorted(set(candidates))
    for part in _chunks(wanted, db):
        clause, params = db.in_list(part)
        graph.taken.update(
            row[0]
            for row in db.execute(
                f"SELECT profile_id FROM profiles WHERE space = ? AND profile_id {clause}",
                [space, *params],
            )
        )


def write(db: IdentityDb, graph: Graph, changes: Changes, writes: StepWrites) -> None:
    """Write a step's effects (inside the step's transaction)."""
    space = graph.space
    db.executemany(
        "INSERT INTO identities (space, collection, id_type, id_value, profile_id, source_id,"
        " first_message_id, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (space, collection, id_type, id_value) DO UPDATE SET"
        " profile_id = excluded.profile_id, last_seen_ms = excluded.last_seen_ms",
        [
            (
                space,
                *key,
                row.profile,
                row.source_id,
                row.first_message_id,
                row.first_seen_ms,
                row.last_seen_ms,
            )
            for key in sorted(changes.ids)
            for row in (graph.ids[key],)
        ],
    )
    db.executemany(
        "INSERT INTO profiles (space, profile_id, collection, first_seq, created_ms, updated_ms,"
        " first_message_id, first_source_id, merged_into)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (space, profile_id) DO UPDATE SET"
        " updated_ms = excluded.updated_ms, merged_into = excluded.merged_into",
        [
            (
                space,
                profile,
                p.collection,
                p.first_seq,
                p.created_ms,
                p.updated_ms,
                p.first_message_id,
                p.first_source_id,
                p.merged_into,
            )
            for profile in sorted(changes.profiles)
            for p in (graph.profiles[profile],)
        ],
    )
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
    db.executemany(
        "INSERT INTO profile_traits (space, profile_id, key, value, source_id, updated_ms, seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)" + _NEWER_WINS,
        [
            (space, changes.root(profile), key, w.value, w.source_id, w.updated_ms, w.seq)
            for (profile, key), w in sorted(writes.traits.items())
        ],
    )
    db.executemany(
        "INSERT INTO profile_events (space, profile_id, seq) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [(space, profile, seq) for profile, seq in writes.events],
    )


# The newest value of a trait wins, by event time then by log order: the same answer whatever
# order merges and steps bring them in.
_NEWER_WINS = (
    " ON CONFLICT (space, profile_id, key) DO UPDATE SET value = excluded.value,"
    " source_id = excluded.source_id, updated_ms = excluded.updated_ms, seq = excluded.seq"
    " WHERE (excluded.updated_ms, excluded.seq) > (profile_traits.updated_ms, profile_traits.seq)"
)
