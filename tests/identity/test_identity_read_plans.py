"""Every read the Profiles page, `sluice profiles show` and the Profile API make finds its rows
by an index, never by scanning the space: SQLite has no statistics, and a query it plans as a
search of the primary key by `space` alone reads every row of the workspace (2 s a profile at a
million profiles, measured with bench/profile_api.py). Checked on SQLite's plans, which depend
on the schema and the query, not on how many rows there are."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.explain import events_page, find, merge_stories
from sluice.identity.lookup import view
from sluice.identity.rules import rules_from
from sluice.identity.tables import SqliteIdentityDb
from sluice.profileapi.reads import Reader
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SPACE = "default"
RULES = rules_from(None)
# A search by `space` alone (the primary key's or an index's first column), or a full scan.
BAD_PLAN = re.compile(r"SCAN (?!\(subquery|CONSTANT)|\(space=\?\)$")
EVENTS = [
    {"type": "page", "messageId": "p1", "anonymousId": "anon-1"},
    {"type": "identify", "messageId": "s1", "userId": "jane", "traits": {"email": "j@x.io"}},
    {"type": "identify", "messageId": "s2", "userId": "jane", "anonymousId": "anon-1"},
    {"type": "group", "messageId": "g1", "userId": "jane", "groupId": "acme"},
]


class RecordingDb(SqliteIdentityDb):
    """The real SQLite identity tables, keeping each statement run (to explain its plan)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements.append((sql, list(params)))
        return super().execute(sql, params)


def test_profile_reads_use_an_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.append(AppendBatch(events=[
        NewEvent("web", e["messageId"], e["type"], None, 1_700_000_000_000 + i,
                 msgspec.json.encode(e))
        for i, e in enumerate(EVENTS, start=1)
    ]))  # fmt: skip
    db = RecordingDb(tmp_path / "identity.db")
    consumer = IdentityConsumer(store, db, SPACE, RULES)
    consumer.prepare()
    consumer.run_until_caught_up()
    db.statements.clear()

    jane = find(db, SPACE, "user_id:jane")
    assert jane is not None
    shown = view(db, SPACE, jane)
    assert shown is not None and shown.merges
    events_page(db, store, RULES, SPACE, shown.members, None, 20)
    merge_stories(db, store, RULES, SPACE, shown.merges)
    reader = Reader(db, store)
    profile = reader.find(SPACE, "users", "user_id", "jane")
    assert profile is not None
    reader.traits(SPACE, profile, [], 10, None)
    reader.external_ids(SPACE, profile, [], 10, None)
    reader.external_ids(SPACE, profile, ["email"], 10, ("anonymous_id", "anon-1"))
    reader.events(SPACE, profile, RULES, lambda *_: True, 10, True, None)
    reader.links(SPACE, profile, RULES, 20)

    assert len(db.statements) > 20
    bad = []
    for sql, params in db.statements:
        plan = [str(row[3]) for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        bad += [f"{sql}\n    {step}" for step in plan if BAD_PLAN.search(step)]
    assert bad == [], "\n".join(bad)
    db.close()
    store.close()
