"""What the Profiles page reads (`identity/explain.py`), on both backends: a real log (SQLite
store) resolved by the real consumer, then searched, paged and explained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.explain import (
    ELSEWHERE,
    JOINED,
    LINKED,
    events_page,
    find,
    graph_state,
    merge_stories,
)
from sluice.identity.lookup import view
from sluice.identity.rules import rules_from
from sluice.identity.tables import IdentityDb
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore

SPACE = "default"
T0 = 1_700_000_000_000
RULES = rules_from(None)
EVENTS: list[dict[str, Any]] = [
    {"type": "page", "messageId": "p1", "anonymousId": "anon-1"},
    {"type": "track", "messageId": "p2", "anonymousId": "anon-1", "event": "Viewed"},
    # The sign-up: the backend knows the user (a second profile), the browser joins them.
    {"type": "identify", "messageId": "s1", "userId": "jane", "traits": {"email": "j@x.io"}},
    {"type": "identify", "messageId": "s2", "userId": "jane", "anonymousId": "anon-1"},
    {"type": "group", "messageId": "g1", "userId": "jane", "groupId": "acme"},
    # A new user_id with jane's email: the email is demoted (user_id limit 1).
    {"type": "track", "messageId": "b1", "userId": "bob", "event": "Shared",
     "context": {"traits": {"email": "j@x.io"}}},
]  # fmt: skip


@pytest.fixture
def graph(db: IdentityDb, tmp_path: Path) -> tuple[IdentityDb, SqliteStore]:
    store = SqliteStore(tmp_path / "log.db")
    store.append(
        AppendBatch(
            events=[
                NewEvent("web", e["messageId"], e["type"], e.get("event"), T0 + i * 1000,
                         msgspec.json.encode(e))
                for i, e in enumerate(EVENTS, start=1)
            ]
        )
    )  # fmt: skip
    consumer = IdentityConsumer(store, db, SPACE, RULES)
    consumer.prepare()
    assert consumer.run_until_caught_up() == len(EVENTS)
    return db, store


def test_find_by_any_id_or_profile_id(graph: Any) -> None:
    db, _ = graph
    jane = find(db, SPACE, "user_id:jane")
    assert jane is not None and jane.startswith("use_")
    assert find(db, SPACE, "anonymous_id:anon-1") == jane
    assert find(db, SPACE, " EMAIL:j@x.io ") == jane  # the type is lower-cased, text trimmed
    assert find(db, SPACE, jane) == jane
    (merge,) = view(db, SPACE, jane).merges  # type: ignore[union-attr]
    assert find(db, SPACE, merge["loser"]) == jane  # a merged profile leads to the live one
    account = find(db, SPACE, "group_id:acme")
    assert account is not None and account.startswith("acc_")
    assert find(db, SPACE, "user_id:nobody") is None
    assert find(db, SPACE, "use_doesnotexist") is None
    for text in ("jane", "user_id:", ":jane"):
        with pytest.raises(ValueError, match="type:value"):
            find(db, SPACE, text)


def test_graph_state_counts(graph: Any) -> None:
    db, store = graph
    state = graph_state(db, store, SPACE, True)
    assert (state.position, state.log_last_seq, state.lag) == (6, 6, 0)
    assert (state.events, state.merges, state.refused) == (6, 1, 0)
    assert state.demoted == 1
    assert state.profiles == 3  # jane, bob, and the account acme


def test_events_page_by_page_with_each_ids_fate(graph: Any) -> None:
    db, store = graph
    jane = find(db, SPACE, "user_id:jane")
    members = view(db, SPACE, jane).members  # type: ignore[union-attr]
    first, before = events_page(db, store, RULES, SPACE, members, None, 3)
    assert [e.seq for e in first] == [5, 4, 3] and before == 3
    rest, after = events_page(db, store, RULES, SPACE, members, before, 3)
    assert [e.seq for e in rest] == [2, 1] and after is None
    group = first[0]
    assert group.stored is not None and group.stored.message_id == "g1"
    fates = {(i.type, i.value): (i.fate, i.holder) for i in group.ids}
    assert fates[("user_id", "jane")] == (JOINED, jane)
    assert fates[("group_id", "acme")] == (LINKED, find(db, SPACE, "group_id:acme"))
    assert group.kept_apart == []

    bob = find(db, SPACE, "user_id:bob")
    (shared,), _ = events_page(db, store, RULES, SPACE, [bob], None, 5)
    fates = {(i.type, i.value): (i.fate, i.holder) for i in shared.ids}
    assert fates == {("user_id", "bob"): (JOINED, bob), ("email", "j@x.io"): (ELSEWHERE, jane)}
    assert [i.value for i in shared.kept_apart] == ["j@x.io"]


def test_a_merge_is_told_by_its_event(graph: Any) -> None:
    db, store = graph
    jane = find(db, SPACE, "user_id:jane")
    shown = view(db, SPACE, jane)
    assert shown is not None
    (story,) = merge_stories(db, store, RULES, SPACE, shown.merges)
    assert story.winner == jane and story.loser != jane
    assert "user_id=jane" in story.reason and "anonymous_id=anon-1" in story.reason
    assert story.event.stored is not None
    assert (story.seq, story.event.stored.message_id, story.event.stored.type) == (
        4, "s2", "identify"
    )  # fmt: skip
    assert {(i.type, i.fate) for i in story.event.ids} == {
        ("user_id", JOINED), ("anonymous_id", JOINED)
    }  # fmt: skip
    # The merged profile began with the backend's identify; the anonymous one is older.
    assert (story.loser_first_message_id, story.loser_first_source_id) == ("s1", "web")
    assert story.loser_created_ms == T0 + 3 * 1000


def test_the_profile_count_stops_past_its_cap(graph: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting is a scan: past the cap the page says "N+" instead of scanning a million."""
    db, store = graph
    monkeypatch.setattr("sluice.identity.explain.COUNT_CAP", 1)
    state = graph_state(db, store, SPACE, True)
    assert (state.profiles, state.profiles_over_cap) == (2, True)
    assert graph_state(db, store, SPACE, True, count=False).profiles == 0
