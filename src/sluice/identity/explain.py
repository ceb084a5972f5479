"""Why a profile is what it is: its events with what became of each id they carried, and its
merges with the event behind each. What the UI's Profiles page shows (docs/ui.md).

Read-only, from the identity tables (through `lookup.py`'s reads and a few of its own) and the
log. Nothing here is recorded by the graph for the page's sake: a demotion is not written
anywhere per event (only counted in `identity_position`), so it is *inferred* by reading an
event back and asking, for each identifier it carries, which profile holds it now: the profile
the event resolved to (joined), another profile (kept apart: the identifier was demoted from
this event by a limit or the merge-size guard, or moved there by a later merge), or none (demoted
and never kept by any event since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.identity.extract import external_ids
from sluice.identity.lookup import ACCOUNT_TYPES, find_profile, live
from sluice.identity.rules import ACCOUNTS, USERS, Rules
from sluice.identity.tables import IdentityDb
from sluice.store.base import Store, StoredEvent

PROFILE_PREFIXES = {"use_": USERS, "acc_": ACCOUNTS}
COUNT_CAP = 10_000  # live profiles counted for the search page; more shows as "10,000+"
JOINED, ELSEWHERE, UNHELD, LINKED = "joined", "elsewhere", "unheld", "linked"


@dataclass(slots=True)
class GraphState:
    """The graph's counters, as `sluice identity status` prints them."""

    space: str
    enabled: bool
    position: int = 0
    log_last_seq: int = 0
    events: int = 0
    profiles: int = 0  # up to COUNT_CAP + 1
    merges: int = 0
    refused: int = 0
    demoted: int = 0

    @property
    def profiles_over_cap(self) -> bool:
        return self.profiles > COUNT_CAP

    @property
    def lag(self) -> int:
        return max(0, self.log_last_seq - self.position)


@dataclass(slots=True)
class IdFate:
    """One identifier an event carried, and the profile that holds it now (None: no profile)."""

    collection: str
    type: str
    value: str
    holder: str | None
    fate: str  # JOINED, ELSEWHERE, UNHELD, or LINKED (the other collection: a group's account)


@dataclass(slots=True)
class EventLine:
    """One indexed event, read back from the log (`stored` None: retention trimmed it)."""

    seq: int
    profile_id: str  # the profile the event resolved to when it was read
    stored: StoredEvent | None = None
    timestamp: str | None = None
    ids: list[IdFate] = field(default_factory=list)

    @property
    def kept_apart(self) -> list[IdFate]:
        return [i for i in self.ids if i.fate in (ELSEWHERE, UNHELD)]


@dataclass(slots=True)
class MergeStory:
    """One `merges` row with the event that caused it and where the merged profile began."""

    loser: str
    winner: str
    seq: int
    message_id: str
    reason: str
    at_ms: int
    event: EventLine
    loser_first_message_id: str | None = None
    loser_first_source_id: str | None = None
    loser_created_ms: int | None = None


def graph_state(
    db: IdentityDb, store: Store, space: str, enabled: bool, count: bool = True
) -> GraphState:
    """The counters; `count` also counts live profiles, up to `COUNT_CAP` (counting is a scan of
    the space's profiles: 0.2-2 s at a million on SQLite; `sluice identity status` counts all;
    a profile page does not need it)."""
    state = GraphState(space, enabled, log_last_seq=store.last_seq())
    rows = db.execute(
        "SELECT seq, events, merges, refused, demoted FROM identity_position WHERE space = ?",
        [space],
    )
    if rows:
        state.position, state.events, state.merges, state.refused, state.demoted = rows[0]
    if count:
        state.profiles = int(
            db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM profiles WHERE space = ?"
                " AND merged_into IS NULL LIMIT ?) AS capped",
                [space, COUNT_CAP + 1],
            )[0][0]
        )
    return state


def find(db: IdentityDb, space: str, text: str) -> str | None:
    """The live profile of `type:value` (Segment's form: `email:jane@example.com`) or of a
    profile id (`use_...`, `acc_...`, merged or not); None when there is none.
    Raises ValueError for text that is neither."""
    text = text.strip()
    if text[:4] in PROFILE_PREFIXES and ":" not in text:
        rows = db.execute(
            "SELECT profile_id FROM profiles WHERE space = ? AND profile_id = ?", [space, text]
        )
        return live(db, space, text) if rows else None
    id_type, sep, value = text.partition(":")
    if not sep or not id_type.strip() or not value:
        raise ValueError(
            f"Search by type:value (email:jane@example.com, user_id:42, anonymous_id:...) or"
            f" by a profile id (use_..., acc_...), not {text!r}"
        )
    id_type = id_type.strip().lower()
    collection = ACCOUNTS if id_type in ACCOUNT_TYPES else USERS
    return find_profile(db, space, collection, id_type, value) or None


def events_page(
    db: IdentityDb,
    store: Store,
    rules: Rules,
    space: str,
    members: list[str],
    before: int | None,
    limit: int,
) -> tuple[list[EventLine], int | None]:
    """The profile's events older than `before`, newest first, and the `before` of the next
    page (None on the last)."""
    clause, params = db.in_list(members)
    where = " AND seq < ?" if before is not None else ""
    rows = db.execute(
        f"SELECT seq, profile_id FROM profile_events WHERE space = ? AND profile_id {clause}"
        f"{where} ORDER BY seq DESC LIMIT ?",
        [space, *params, *([before] if before is not None else []), limit + 1],
    )
    lines = [read_event(db, store, rules, space, int(seq), str(p)) for seq, p in rows[:limit]]
    return lines, (lines[-1].seq if len(rows) > limit else None)


def read_event(
    db: IdentityDb, store: Store, rules: Rules, space: str, seq: int, profile_id: str
) -> EventLine:
    """Event `seq` from the log, with the fate of each identifier it carries (as the current
    rules extract them) relative to `profile_id`, the profile it resolved to."""
    line = EventLine(seq, profile_id)
    found = store.read_after(seq - 1, 1)
    if not found or found[0].seq != seq:
        return line
    line.stored = found[0]
    body = msgspec.json.decode(found[0].payload)
    if not isinstance(body, dict):
        return line
    timestamp = body.get("timestamp")
    line.timestamp = timestamp if isinstance(timestamp, str) else None
    target = live(db, space, profile_id)
    for collection, id_type, value in external_ids(body, rules):
        holder = find_profile(db, space, collection, id_type, value) or None
        if collection != _collection_of(profile_id):
            fate = LINKED  # resolved on its own (a group call names a user and an account)
        elif holder is None:
            fate = UNHELD
        elif holder == target:
            fate = JOINED
        else:
            fate = ELSEWHERE
        line.ids.append(IdFate(collection, id_type, value, holder, fate))
    return line


def merge_stories(
    db: IdentityDb, store: Store, rules: Rules, space: str, merges: list[dict[str, Any]]
) -> list[MergeStory]:
    """`merges` rows (`lookup.view`'s) with their event and the merged profile's beginning."""
    stories = []
    for merge in merges:
        story = MergeStory(
            merge["loser"],
            merge["winner"],
            merge["seq"],
            merge["message_id"],
            merge["reason"],
            merge["at_ms"],
            read_event(db, store, rules, space, merge["seq"], merge["winner"]),
        )
        rows = db.execute(
            "SELECT first_message_id, first_source_id, created_ms FROM profiles"
            " WHERE space = ? AND profile_id = ?",
            [space, merge["loser"]],
        )
        if rows:
            (story.loser_first_message_id, story.loser_first_source_id, story.loser_created_ms) = (
                rows[0]
            )
        stories.append(story)
    return stories


def _collection_of(profile_id: str) -> str:
    return PROFILE_PREFIXES.get(profile_id[:4], USERS)
