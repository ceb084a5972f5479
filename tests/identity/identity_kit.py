"""Helpers for identity tests: a log in memory, events, the tables as comparable data, and the
brute-force oracle (connected components of the identifiers events carry together)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import Rules, TypeRule
from sluice.identity.tables import TABLES, IdentityDb
from sluice.store.base import StoredEvent

SPACE = "default"
T0 = 1_700_000_000_000
FIELDS = {"user_id": "userId", "anonymous_id": "anonymousId"}


class ListLog:
    """The part of the store the consumer reads: `read_after` over a list of events."""

    def __init__(self, events: Sequence[StoredEvent] = ()) -> None:
        self.events = list(events)

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return [e for e in self.events if e.seq > seq][:limit]


def payload(ids: Iterable[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    """An identify carrying these (type, value) identifiers where Segment reads each from."""
    body: dict[str, Any] = {"type": "identify", "traits": {}, "context": {}}
    externals = []
    for id_type, value in ids:
        # A second value of a type the payload has a field for goes to context.externalIds.
        if id_type in FIELDS and FIELDS[id_type] not in body:
            body[FIELDS[id_type]] = value
        elif id_type == "email" and "email" not in body["traits"]:
            body["traits"]["email"] = value
        else:
            externals.append(
                {"id": value, "type": id_type, "collection": "users", "encoding": "none"}
            )
    if externals:
        body["context"]["externalIds"] = externals
    body.update(extra)
    return body


def log_of(bodies: Sequence[dict[str, Any]], *, step_ms: int = 1000) -> ListLog:
    events = []
    for i, body in enumerate(bodies, start=1):
        message_id = body.setdefault("messageId", f"m{i}")
        events.append(
            StoredEvent(
                i,
                "web",
                message_id,
                body.get("type", "track"),
                body.get("event"),
                T0 + i * step_ms,
                msgspec.json.encode(body),
            )
        )
    return ListLog(events)


def no_limits(types: Iterable[str]) -> Rules:
    big = 10**6
    return Rules(
        types={t: TypeRule(big, None, Rules().rule(t).rank) for t in types},
        max_merge_identities=big,
    )


def snapshot(db: IdentityDb, space: str = SPACE) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the space, sorted: two graphs are the same when their snapshots are."""
    tables = {
        table: sorted(
            tuple(row) for row in db.execute(f"SELECT * FROM {table} WHERE space = ?", [space])
        )
        for table in TABLES
    }
    position = db.execute(
        "SELECT seq, clock_ms, first_seq, events, merges, refused, demoted"
        " FROM identity_position WHERE space = ?",
        [space],
    )
    tables["identity_position"] = [tuple(r) for r in position]
    return tables


def partition(db: IdentityDb, space: str = SPACE) -> set[frozenset[tuple[str, str]]]:
    """The identifiers of each live profile."""
    groups: dict[str, set[tuple[str, str]]] = {}
    for id_type, value, profile in db.execute(
        "SELECT id_type, id_value, profile_id FROM identities WHERE space = ?", [space]
    ):
        groups.setdefault(profile, set()).add((id_type, value))
    return {frozenset(g) for g in groups.values()}


def components(events: Iterable[Iterable[tuple[str, str]]]) -> set[frozenset[tuple[str, str]]]:
    """The oracle: identifiers seen in one event are one person, transitively."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for ids in events:
        ids = list(ids)
        for a in ids:
            find(a)
        for a, b in itertools.pairwise(ids):
            parent[find(a)] = find(b)
    groups: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for x in list(parent):
        groups.setdefault(find(x), set()).add(x)
    return {frozenset(g) for g in groups.values()}


def consume(log: ListLog, db: IdentityDb, rules: Rules, step: int = 1000) -> IdentityConsumer:
    consumer = IdentityConsumer(log, db, SPACE, rules, step_events=step)  # type: ignore[arg-type]
    consumer.prepare()
    consumer.run_until_caught_up()
    return consumer


def wipe(db: IdentityDb) -> None:
    for table in (*TABLES, "identity_position"):
        db.execute(f"DELETE FROM {table}")
