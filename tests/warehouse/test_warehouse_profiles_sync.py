"""Profiles Sync into a real DuckDB file and a real PostgreSQL warehouse, from identity tables
a real consumer built (SQLite identity.db for DuckDB, PostgreSQL for PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import psycopg
import pytest

from sluice.config import Settings
from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import (
    IdentityDb,
    PostgresIdentityDb,
    SqliteIdentityDb,
    open_identity_db,
)
from sluice.store.base import AppendBatch, NewEvent, StoredEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.factory import WarehouseConfig
from sluice.warehouse.loader import WarehouseLoader
from sluice.warehouse.profiles_sync import sync_profiles
from sluice.workspace import WorkspaceError
from sluice.workspace.files import parse_workspace
from sluice.workspace.model_checks import profiles_setting_problem

SPACE = "default"
T0 = 1_700_000_000_000

Query = Callable[[str], list[tuple[Any, ...]]]

BROWSE = {"type": "page", "anonymousId": "anon-1", "name": "Home"}
SIGN_UP = {
    "type": "identify",
    "anonymousId": "anon-1",
    "userId": "jane",
    "traits": {"email": "jane@example.com", "plan": "free", "age": 31},
}
OTHER_DEVICE = {"type": "page", "anonymousId": "anon-2", "name": "Pricing"}
LOG_IN = {"type": "identify", "anonymousId": "anon-2", "userId": "jane",
          "traits": {"plan": "pro"}}  # fmt: skip


class ListLog:
    """The part of the store the identity consumer reads."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.events: list[StoredEvent] = []
        for body in bodies:
            self.add(body)

    def add(self, body: dict[str, Any]) -> None:
        seq = len(self.events) + 1
        body = {**body, "messageId": f"m{seq}", "timestamp": "2026-12-01T00:00:00.000Z"}
        self.events.append(
            StoredEvent(seq, "web", f"m{seq}", body["type"], None, T0 + seq * 1000,
                        msgspec.json.encode(body))
        )  # fmt: skip

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.events[seq : seq + limit]


class Warehouse:
    """One warehouse under test: its config, the identity tables, and a way to query it."""

    def __init__(self, config: WarehouseConfig, db: IdentityDb, query: Query, data: Path) -> None:
        self.config, self.db, self.query, self.data = config, db, query, data

    def sync(self, log: ListLog) -> dict[str, int]:
        consumer = IdentityConsumer(log, self.db, SPACE, rules_from(None), step_events=2)  # type: ignore[arg-type]
        consumer.prepare()
        consumer.run_until_caught_up()
        return sync_profiles(self.config, self.data, self.db, SPACE).appended


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        path = tmp_path / "wh.duckdb"
        config = WarehouseConfig("wh", "duckdb", {"path": str(path), "profiles": True})
        db: IdentityDb = SqliteIdentityDb(tmp_path / "identity.db")

        def query(sql: str) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(path), read_only=True) as conn:
                return conn.execute(sql).fetchall()

    else:
        url = request.getfixturevalue("pg_url")
        config = WarehouseConfig("wh", "postgres", {"url": url, "profiles": True})
        db = PostgresIdentityDb(url)  # the identity tables beside the warehouse's own

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url) as conn:
                return conn.execute(sql).fetchall()

    try:
        yield Warehouse(config, db, query, tmp_path)
    finally:
        db.close()


def test_anonymous_browsing_then_sign_up_is_one_profile_with_both_ids_and_traits(
    warehouse: Warehouse,
) -> None:
    log = ListLog([BROWSE, SIGN_UP])
    appended = warehouse.sync(log)
    q = warehouse.query
    [(canonical,)] = q("SELECT DISTINCT canonical_segment_id FROM profiles.user_identifiers")
    assert canonical.startswith("use_")
    assert sorted(q("SELECT type, value FROM profiles.user_identifiers")) == [
        ("anonymous_id", "anon-1"),
        ("email", "jane@example.com"),
        ("user_id", "jane"),
    ]
    assert sorted(q("SELECT canonical_segment_id, name, value FROM profiles.user_traits")) == [
        (canonical, "age", "31"),
        (canonical, "email", "jane@example.com"),
        (canonical, "plan", "free"),
    ]
    assert q("SELECT segment_id, canonical_segment_id FROM profiles.id_graph") == [
        (canonical, canonical)
    ]
    assert q("SELECT canonical_segment_id, segment_id FROM profiles.profile_merges") == [
        (canonical, canonical)
    ]
    # The raw tables: the profile's creation by the page (m1), each identifier once.
    assert q(
        "SELECT segment_id, canonical_segment_id, triggering_event_id"
        " FROM profiles.id_graph_updates"
    ) == [(canonical, canonical, "m1")]
    assert sorted(
        q(
            "SELECT external_id_type, external_id_value, triggering_event_id"
            " FROM profiles.external_id_mapping_updates"
        )
    ) == [("anonymous_id", "anon-1", "m1"), ("email", "jane@example.com", "m2"),
          ("user_id", "jane", "m2")]  # fmt: skip
    assert appended == {
        "id_graph_updates": 1,
        "external_id_mapping_updates": 3,
        "profile_traits_updates": 3,
    }


def test_a_second_load_appends_nothing_and_a_merge_appends_what_moved(
    warehouse: Warehouse,
) -> None:
    log = ListLog([BROWSE, SIGN_UP, OTHER_DEVICE])
    warehouse.sync(log)
    again = warehouse.sync(log)
    assert again == {
        "id_graph_updates": 0,
        "external_id_mapping_updates": 0,
        "profile_traits_updates": 0,
    }, "a load with nothing new appends nothing: the materialized tables are its position"
    q = warehouse.query
    assert q("SELECT count(DISTINCT canonical_segment_id) FROM profiles.id_graph") == [(2,)]
    # anon-2 logs in as jane: its profile merges into jane's (the older one).
    log.add(LOG_IN)
    merged = warehouse.sync(log)
    [(jane,)] = q("SELECT canonical_segment_id FROM profiles.user_identifiers WHERE value = 'jane'")
    assert q("SELECT DISTINCT canonical_segment_id FROM profiles.id_graph") == [(jane,)]
    [(loser,)] = q(
        "SELECT segment_id FROM profiles.id_graph WHERE segment_id <> canonical_segment_id"
    )
    assert sorted(q("SELECT canonical_segment_id, segment_id FROM profiles.profile_merges")) == (
        sorted([(jane, jane), (jane, loser)])
    )
    # The merge is one id_graph_updates row (loser → jane, triggered by the log-in, m4); the
    # plan jane has now ("pro", newer) is one profile_traits_updates row.
    assert q(
        "SELECT segment_id, canonical_segment_id, triggering_event_id FROM"
        " profiles.id_graph_updates WHERE segment_id <> canonical_segment_id"
    ) == [(loser, jane, "m4")]
    assert q("SELECT value FROM profiles.user_traits WHERE name = 'plan'") == [("pro",)]
    assert merged == {
        "id_graph_updates": 1,
        "external_id_mapping_updates": 0,
        "profile_traits_updates": 1,
    }
    assert sorted(q("SELECT type, value FROM profiles.user_identifiers")) == [
        ("anonymous_id", "anon-1"),
        ("anonymous_id", "anon-2"),
        ("email", "jane@example.com"),
        ("user_id", "jane"),
    ]


def test_the_setting_is_refused_where_it_cannot_load() -> None:
    assert profiles_setting_problem("duckdb", True) is None
    assert profiles_setting_problem("postgres", False) is None
    assert "not 'lake'" in str(profiles_setting_problem("lake", True))
    assert "Expected true or false" in str(profiles_setting_problem("duckdb", "yes"))
    text = (
        "warehouses:\n  - id: lake1\n    type: lake\n    settings: {path: lake, profiles: true}\n"
    )
    with pytest.raises(WorkspaceError) as caught:
        parse_workspace(text, "workspace.yaml")
    assert "warehouses[0].settings.profiles" in str(caught.value)


def test_a_warehouse_load_brings_the_events_and_the_profiles(tmp_path: Path) -> None:
    """As the worker runs it: the log in a real store, the identity consumer on it, then one
    `load_once` of a DuckDB warehouse with `profiles: true` loads both kinds of tables."""
    store = SqliteStore(tmp_path / "log.db")
    try:
        events = []
        for n, body in enumerate((BROWSE, SIGN_UP), start=1):
            msg = {**body, "messageId": f"msg-{n}", "timestamp": "2026-12-01T00:00:00.000Z"}
            events.append(NewEvent("web", msg["messageId"], msg["type"], None, 0,
                                   msgspec.json.encode(msg)))  # fmt: skip
        store.append(AppendBatch(events=events))
        settings = Settings(data_dir=tmp_path)
        db = open_identity_db(tmp_path, None)
        try:
            consumer = IdentityConsumer(store, db, SPACE, rules_from(None))
            consumer.prepare()
            consumer.run_until_caught_up()
        finally:
            db.close()
        body = {"id": "main", "type": "duckdb", "settings": {"path": "wh.duckdb", "profiles": True}}
        report = WarehouseLoader(settings, store, msgspec.json.encode(body)).load_once()
    finally:
        store.close()
    assert report.profiles is not None and report.profiles.profiles == 1
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM web.identifies").fetchall() == [(1,)]
        rows = conn.execute(
            "SELECT DISTINCT canonical_segment_id FROM profiles.user_identifiers"
        ).fetchall()
        assert len(rows) == 1
        ids = conn.execute("SELECT type, value FROM profiles.user_identifiers").fetchall()
        assert sorted(ids) == [
            ("anonymous_id", "anon-1"), ("email", "jane@example.com"), ("user_id", "jane")
        ]  # fmt: skip


def test_a_merge_of_a_merged_profile_appends_recursive_rows(warehouse: Warehouse) -> None:
    """Segment's "recursive entries": when b (which c had joined) merges into a, both b and c
    get an id_graph_updates row to a, triggered by that merge."""
    page = [{"type": "page", "anonymousId": f"anon-{x}"} for x in "abc"]
    log = ListLog([*page, {"type": "identify", "anonymousId": "anon-b",
                           "context": {"externalIds": [{"id": "anon-c", "type": "anonymous_id",
                                                        "collection": "users"}]}}])  # fmt: skip
    warehouse.sync(log)
    q = warehouse.query
    owner = dict(q("SELECT value, canonical_segment_id FROM profiles.user_identifiers"))
    a, b = owner["anon-a"], owner["anon-b"]
    assert owner["anon-c"] == b
    [(c,)] = q(f"SELECT segment_id FROM profiles.id_graph WHERE segment_id NOT IN ('{a}', '{b}')")
    log.add({"type": "identify", "anonymousId": "anon-a",
             "context": {"externalIds": [{"id": "anon-b", "type": "anonymous_id"}]}})  # fmt: skip
    appended = warehouse.sync(log)
    assert appended["id_graph_updates"] == 2
    assert sorted(
        q(
            "SELECT segment_id, canonical_segment_id, triggering_event_id FROM"
            " profiles.id_graph_updates WHERE canonical_segment_id = "
            f"'{a}' AND segment_id <> '{a}'"
        )
    ) == sorted([(b, a, "m5"), (c, a, "m5")])
    assert sorted(q("SELECT segment_id, canonical_segment_id FROM profiles.id_graph")) == sorted(
        [(a, a), (b, a), (c, a)]
    )
