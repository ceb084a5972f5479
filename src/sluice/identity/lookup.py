"""Reading profiles back: by one of their identifiers, with their traits, events and merges.

What `sluice profiles show` prints, and what the Profile API will serve. A merged profile's
events stay indexed under the profile they resolved to at the time; its `members` (itself and
every profile merged into it, one hop away by `merged_into`) find them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.identity.rules import ACCOUNTS, USERS, Rules
from sluice.identity.tables import IdentityDb
from sluice.store.base import EventStore

ACCOUNT_TYPES = ("group_id",)
# A profile's identifiers, by the `identities_profile` index. Written `space || '' = ?`, not
# `space = ?`: SQLite, without statistics, otherwise searches the primary key by `space` alone
# (a scan of the whole space: 2 s a profile at a million profiles) whenever the index does not
# cover the columns read. The expression leaves it only the index; PostgreSQL plans it the same.
IDS_OF_PROFILE = "space || '' = ? AND profile_id = ?"


@dataclass(slots=True)
class ProfileView:
    profile_id: str
    collection: str
    created_ms: int
    updated_ms: int
    first_message_id: str
    members: list[str]
    identities: list[dict[str, Any]] = field(default_factory=list)
    traits: list[dict[str, Any]] = field(default_factory=list)
    event_seqs: list[int] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)


def parse_identifier(text: str) -> tuple[str, str, str]:
    """`type:value` (Segment's Profile API form, e.g. `user_id:abc`, `group_id:123`) →
    (collection, type, value)."""
    id_type, sep, value = text.partition(":")
    if not sep or not id_type or not value:
        raise ValueError(f"expected type:value (e.g. user_id:abc), got {text!r}")
    id_type = id_type.strip().lower()
    return (ACCOUNTS if id_type in ACCOUNT_TYPES else USERS), id_type, value


def find_profile(db: IdentityDb, space: str, collection: str, id_type: str, value: str) -> str:
    """The live profile holding this identifier, or "" when none does."""
    rows = db.execute(
        "SELECT profile_id FROM identities WHERE space = ? AND collection = ? AND id_type = ?"
        " AND id_value = ?",
        [space, collection, id_type, value],
    )
    return str(rows[0][0]) if rows else ""


def live(db: IdentityDb, space: str, profile: str) -> str:
    """A profile id, or the one it was merged into."""
    rows = db.execute(
        "SELECT merged_into FROM profiles WHERE space = ? AND profile_id = ?", [space, profile]
    )
    return str(rows[0][0]) if rows and rows[0][0] else profile


def view(
    db: IdentityDb,
    space: str,
    profile: str,
    events: int = 20,
    log: EventStore | None = None,
    rules: Rules | None = None,
) -> ProfileView | None:
    """Everything the tables say of a live profile; None when there is no such profile.

    Its `updated_ms` is the newer of its identity's last change and, given the `log`, its
    last event's arrival (the graph does not rewrite the profile's row at every event). Given
    the `rules`, an identifier's `last_seen_ms` is None where its type has no window: the
    graph keeps "last seen" only where a window reads it."""
    profile = live(db, space, profile)
    rows = db.execute(
        "SELECT collection, created_ms, updated_ms, first_message_id"
        " FROM profiles WHERE space = ? AND profile_id = ?",
        [space, profile],
    )
    if not rows:
        return None
    merged = db.execute(
        "SELECT profile_id FROM profiles WHERE merged_into = ? ORDER BY profile_id", [profile]
    )
    members = [profile, *(str(r[0]) for r in merged)]
    collection, created_ms, updated_ms, first_message_id = rows[0]
    result = ProfileView(profile, collection, created_ms, updated_ms, first_message_id, members)

    def windowed(id_type: str) -> bool:
        return rules is None or rules.rule(id_type).window_ms is not None

    result.identities = [
        {
            "type": r[0],
            "id": r[1],
            "collection": r[2],
            "source_id": r[3],
            "first_message_id": r[4],
            "created_ms": r[5],
            "last_seen_ms": r[6] if windowed(r[0]) else None,
        }
        for r in db.execute(
            "SELECT id_type, id_value, collection, source_id, first_message_id, first_seen_ms,"
            f" last_seen_ms FROM identities WHERE {IDS_OF_PROFILE} ORDER BY id_type, id_value",
            [space, profile],
        )
    ]
    result.traits = [
        {"key": r[0], "value": msgspec.json.decode(r[1]), "source_id": r[2], "updated_ms": r[3]}
        for r in db.execute(
            "SELECT key, value, source_id, updated_ms FROM profile_traits"
            " WHERE space = ? AND profile_id = ? ORDER BY key",
            [space, profile],
        )
    ]
    clause, params = db.in_list(members)
    result.event_seqs = [
        int(r[0])
        for r in db.execute(
            f"SELECT seq FROM profile_events WHERE space = ? AND profile_id {clause}"
            " ORDER BY seq DESC LIMIT ?",
            [space, *params, events],
        )
    ]
    if log is not None:
        newest = db.execute(
            f"SELECT max(seq) FROM profile_events WHERE space = ? AND profile_id {clause}",
            [space, *params],
        )[0][0]
        last = log.read_after(newest - 1, 1) if newest is not None else []
        if last and last[0].seq == newest:
            result.updated_ms = max(result.updated_ms, last[0].received_at_ms)
    # Two indexed reads (by winner, by loser) rather than one `OR`, which SQLite answers by
    # reading every merge of the space.
    columns = "SELECT loser, winner, seq, message_id, reason, at_ms FROM merges"
    won = db.execute(f"{columns} WHERE winner {clause} AND space = ?", [*params, space])
    lost = db.execute(f"{columns} WHERE space = ? AND loser {clause}", [space, *params])
    by_loser = {r[0]: r for r in (*won, *lost)}  # a merge's loser is its key
    result.merges = [
        {"loser": r[0], "winner": r[1], "seq": r[2], "message_id": r[3], "reason": r[4],
         "at_ms": r[5]}
        for r in sorted(by_loser.values(), key=lambda r: (r[2], r[0]))
    ]  # fmt: skip
    return result
