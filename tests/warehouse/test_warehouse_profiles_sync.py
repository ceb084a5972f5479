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

from sluice.identity.consumer import IdentityConsumer
from sluice.identity.rules import rules_from
from sluice.identity.tables import IdentityDb, PostgresIdentityDb, SqliteIdentityDb
from sluice.store.base import StoredEvent
from sluice.warehouse.factory import WarehouseConfig
from sluice.warehouse.profiles_sync import sync_profiles
from sluice.workspace import WorkspaceError
from sluice.workspace.files import parse_workspace
from sluice.workspace.model import profiles_setting_problem

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
