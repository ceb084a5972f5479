"""The Profile API's reads: one profile's traits, external ids, events, metadata and links.

Read-only, over the identity tables (never written here) and the event log. Every list is read
in a stable order with one row more than the page, so a page knows whether another follows;
its cursor is the last key returned (`Page.after`), which the next request continues after.

Events are not copied into the identity tables: `profile_events` indexes the log, so an event
the log's retention has trimmed is simply no longer there (Segment keeps 14 days; Sluice keeps
what `SLUICE_LOG_RETENTION_DAYS` keeps). A merged profile's events stay indexed under the
profile they resolved to, so they are read over the profile and everything merged into it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.identity.extract import external_ids
from sluice.identity.lookup import IDS_OF_PROFILE
from sluice.identity.rules import ACCOUNTS, USERS, Rules
from sluice.identity.tables import IdentityDb
from sluice.spec.timestamps import format_ms, parse_ms
from sluice.store.base import EventStore, StoredEvent

PROFILE_PREFIXES = {USERS: "use_", ACCOUNTS: "acc_"}
EVENT_BATCH = 200  # seqs read per query while filling a page of events
LINKS_SCAN = 1000  # newest events of a profile read to find its links


@dataclass(slots=True)
class Profile:
    profile_id: str
    collection: str
    created_ms: int
    updated_ms: int
    first_message_id: str
    first_source_id: str
    members: list[str]  # itself and the profiles merged into it


@dataclass(slots=True)
class Page:
    items: list[Any] = field(default_factory=list)
    after: Any = None  # the cursor's key when another page follows, else None


class Reader:
    """The identity tables through one connection, shared by the app's threads under a lock
    (an sqlite3 connection must not run two statements at once)."""

    def __init__(self, db: IdentityDb, store: EventStore) -> None:
        self.db = db
        self.store = store
        self._lock = threading.Lock()

    def sql(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(text, params)

    def event(self, seq: int) -> StoredEvent | None:
        """The log's event `seq`, or None once retention has trimmed it."""
        found = self.store.read_after(seq - 1, 1)
        return found[0] if found and found[0].seq == seq else None

    # --- profiles ---------------------------------------------------------------------------
    def find(self, space: str, collection: str, id_type: str, value: str) -> Profile | None:
        """The live profile of `collection` holding `type:value`, or of that profile id."""
        if id_type == "":
            profile = value
        else:
            rows = self.sql(
                "SELECT profile_id FROM identities WHERE space = ? AND collection = ?"
                " AND id_type = ? AND id_value = ?",
                [space, collection, id_type, value],
            )
            if not rows:
                return None
            profile = str(rows[0][0])
        return self.profile(space, collection, profile)

    def profile(self, space: str, collection: str, profile_id: str) -> Profile | None:
        rows = self.sql(
            "SELECT profile_id, merged_into, collection, created_ms, updated_ms,"
            " first_message_id, first_source_id FROM profiles WHERE space = ? AND profile_id = ?",
            [space, profile_id],
        )
        if rows and rows[0][1]:  # merged: answer for the profile it joined
            rows = self.sql(
                "SELECT profile_id, merged_into, collection, created_ms, updated_ms,"
                " first_message_id, first_source_id FROM profiles"
                " WHERE space = ? AND profile_id = ?",
                [space, rows[0][1]],
            )
        if not rows or rows[0][2] != collection:
            return None
        live, _, _, created, updated, first_message, first_source = rows[0]
        merged = self.sql(
            "SELECT profile_id FROM profiles WHERE merged_into = ? AND space = ?"
            " ORDER BY profile_id",
            [live, space],
        )
        members = [str(live), *(str(r[0]) for r in merged)]
        return Profile(
            str(live), collection, created, updated, first_message, first_source, members
        )

    # --- traits and external ids --------------------------------------------------------------
    def traits(
        self, space: str, profile: Profile, include: list[str], limit: int, after: str | None
    ) -> Page:
        where, params = "", [space, profile.profile_id]
        if include:
            clause, values = self.db.in_list(include)
            where += f" AND key {clause}"
            params += values
        if after is not None:
            where += " AND key > ?"
            params.append(after)
        rows = self.sql(
            "SELECT key, value, source_id, updated_ms FROM profile_traits"
            f" WHERE space = ? AND profile_id = ?{where} ORDER BY key LIMIT ?",
            [*params, limit + 1],
        )
        items = [
            (key, msgspec.json.decode(value), source_id, format_ms(updated_ms))
            for key, value, source_id, updated_ms in rows[:limit]
        ]
        return Page(items, items[-1][0] if len(rows) > limit else None)

    def external_ids(
        self,
        space: str,
        profile: Profile,
        include: list[str],
        limit: int,
        after: tuple[str, str] | None,
    ) -> Page:
        where, params = "", [space, profile.profile_id]
        if include:
            clause, values = self.db.in_list(include)
            where += f" AND id_type {clause}"
            params += values
        if after is not None:
            where += " AND (id_type > ? OR (id_type = ? AND id_value > ?))"
            params += [after[0], after[0], after[1]]
        rows = self.sql(
            "SELECT id_type, id_value, collection, source_id, first_message_id, first_seen_ms"
            f" FROM identities WHERE {IDS_OF_PROFILE}{where}"
            " ORDER BY id_type, id_value LIMIT ?",
            [*params, limit + 1],
        )
        items = [
            {
                "source_id": source_id,
                "collection": collection,
                "id": value,
                "type": id_type,
                "created_at": format_ms(first_seen_ms),
                "encoding": "none",
                "first_message_id": first_message_id,
            }
            for id_type, value, collection, source_id, first_message_id, first_seen_ms in rows[
                :limit
            ]
        ]
        last = (items[-1]["type"], items[-1]["id"]) if len(rows) > limit else None
        return Page(items, last)

    # --- events -------------------------------------------------------------------------------
    def seqs(self, space: str, profile: Profile, descending: bool, after: int | None) -> Any:
        """The profile's event seqs in order, lazily, a batch per query."""
        clause, members = self.db.in_list(profile.members)
        order, compare = ("DESC", "<") if descending else ("ASC", ">")
        while True:
            where = f" AND seq {compare} ?" if after is not None else ""
            rows = self.sql(
                f"SELECT seq FROM profile_events WHERE space = ? AND profile_id {clause}{where}"
                f" ORDER BY seq {order} LIMIT ?",
                [space, *members, *([after] if after is not None else []), EVENT_BATCH],
            )
            for row in rows:
                yield int(row[0])
            if len(rows) < EVENT_BATCH:
                return
            after = int(rows[-1][0])

    def events(
        self,
        space: str,
        profile: Profile,
        rules: Rules,
        accept: Callable[[StoredEvent, dict[str, Any]], bool],
        limit: int,
        descending: bool,
        after: int | None,
    ) -> Page:
        """Up to `limit` events that `accept` keeps, newest (or oldest) first."""
        page = Page()
        last = 0
        for seq in self.seqs(space, profile, descending, after):
            stored = self.event(seq)
            if stored is None:
                continue
            body = msgspec.json.decode(stored.payload)
            if not isinstance(body, dict) or not accept(stored, body):
                continue
            if len(page.items) == limit:
                page.after = last
                break
            page.items.append(event_item(stored, body, rules, profile))
            last = seq
        return page

    def last_event(self, space: str, profile: Profile) -> StoredEvent | None:
        for seq in self.seqs(space, profile, True, None):
            found = self.event(seq)
            if found is not None:
                return found
        return None

    # --- links --------------------------------------------------------------------------------
    def links(self, space: str, profile: Profile, rules: Rules, limit: int) -> list[Profile]:
        """The other collection's profiles named in this profile's events (a group call names
        the user and the account), newest first, from its last `LINKS_SCAN` events."""
        other = ACCOUNTS if profile.collection == USERS else USERS
        found: dict[str, Profile] = {}
        for scanned, seq in enumerate(self.seqs(space, profile, True, None)):
            if scanned >= LINKS_SCAN or len(found) >= limit:
                break
            stored = self.event(seq)
            if stored is None or stored.type != "group":
                continue
            body = msgspec.json.decode(stored.payload)
            for collection, id_type, value in external_ids(body, rules):
                if collection == other:
                    linked = self.find(space, other, id_type, value)
                    if linked is not None and len(found) < limit:
                        found.setdefault(linked.profile_id, linked)
        return list(found.values())

    def identities_of(self, space: str, profile: Profile) -> list[dict[str, Any]]:
        return self.external_ids(space, profile, [], 1000, None).items


def event_item(
    stored: StoredEvent, body: dict[str, Any], rules: Rules, profile: Profile
) -> dict[str, Any]:
    """One event as Segment's `/events` lists it."""
    ids = [
        {"collection": collection, "type": id_type, "id": value, "encoding": "none"}
        for collection, id_type, value in external_ids(body, rules)
    ]
    properties = body.get("properties")
    if stored.type in ("identify", "group"):
        properties = body.get("traits")
    timestamp = body.get("timestamp")
    if not isinstance(timestamp, str):
        timestamp = format_ms(stored.received_at_ms)
    return {
        "external_ids": ids,
        "context": body.get("context") if isinstance(body.get("context"), dict) else {},
        "type": stored.type,
        "message_id": stored.message_id,
        "source_id": stored.source_id,
        "timestamp": timestamp,
        "properties": properties if isinstance(properties, dict) else {},
        "event": stored.event if stored.event is not None else body.get("name"),
        "related": {"users": None},
    }


def event_time_ms(stored: StoredEvent, body: dict[str, Any]) -> int:
    """When the event happened (its `timestamp`), else when it arrived."""
    ms = parse_ms(body.get("timestamp"))
    return ms if ms is not None else stored.received_at_ms
