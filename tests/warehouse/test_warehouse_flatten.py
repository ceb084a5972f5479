"""Events as the rows of Segment's tables (spec 4.1-4.3), planned without a warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from sluice.store.base import StoredEvent
from sluice.warehouse.base import ColumnType, TableBatch
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import Plan, Planner

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = "2026-11-28T10:00:00.123Z"
C = ColumnType


def stored(msgs: Sequence[dict[str, Any]], source: str = "web") -> list[StoredEvent]:
    events = []
    for seq, msg in enumerate(msgs, 1):
        msg = {"messageId": f"m{seq}", "receivedAt": T1, "timestamp": T1, **msg}
        payload = msgspec.json.encode(msg)
        events.append(StoredEvent(seq, source, msg["messageId"], msg["type"], None, 0, payload))
    return events


def plan(*msgs: dict[str, Any], limit: int = 120, warehouse_id: str = "main") -> Plan:
    return Planner(warehouse_id, Namer(limit), lambda schema: {}).plan(stored(msgs), NOW)


def tables(p: Plan) -> dict[str, TableBatch]:
    return {f"{b.schema}.{b.table}": b for b in p.batches}


def test_track_makes_a_tracks_row_and_an_event_table_row() -> None:
    p = plan(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "anonymousId": "a1",
            "sentAt": T1,
            "originalTimestamp": T1,
            "context": {"app": {"version": "1.2"}, "library": {"name": "analytics.js"}},
            "properties": {
                "orderId": "o1",
                "total": 27.5,
                "products": [{"sku": "p1", "price": 19}],
                "shipping": {"address": {"city": "Paris"}},
                "coupon": None,
                "empty": {},
            },
        }
    )
    by = tables(p)
    assert set(by) == {"web.tracks", "web.order_completed"}
    moment = datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)
    standard = {
        "id": "m1",
        "anonymous_id": "a1",
        "user_id": "u1",
        "received_at": moment,
        "sent_at": moment,
        "timestamp": moment,
        "original_timestamp": moment,
        "uuid_ts": NOW,
        "context_app_version": "1.2",
        "context_library_name": "analytics.js",
        "event": "order_completed",
        "event_text": "Order Completed",
    }
    assert by["web.tracks"].rows == [standard]  # no custom properties in tracks
    assert by["web.order_completed"].rows == [
        {
            **standard,
            "order_id": "o1",
            "total": 27.5,
            "products": '[{"sku":"p1","price":19}]',  # arrays are JSON text
            "shipping_address_city": "Paris",  # nested objects flattened with `_`
        }
    ]
    assert by["web.order_completed"].columns["total"] is C.FLOAT
    assert by["web.tracks"].columns["received_at"] is C.TIMESTAMP
    assert "coupon" not in by["web.order_completed"].columns  # no column for null
    assert p.loaded == 1 and p.discards == []


def test_identify_makes_identifies_and_users_rows() -> None:
    p = plan(
        {
            "type": "identify",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"email": "ada@example.com", "name": "Ada", "address": {"city": "Paris"}},
        },
        {"type": "identify", "anonymousId": "a2", "traits": {"email": "anon@example.com"}},
    )
    by = tables(p)
    identifies = by["web.identifies"].rows
    assert [r["id"] for r in identifies] == ["m1", "m2"]
    assert identifies[0]["email"] == "ada@example.com"
    assert identifies[0]["address_city"] == "Paris"
    users = by["web.users"]
    assert users.upsert
    assert users.rows == [
        {
            "id": "u1",  # users.id is the userId; no anonymous_id column
            "received_at": datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC),
            "uuid_ts": NOW,
            "email": "ada@example.com",
            "name": "Ada",
            "address_city": "Paris",
        }
    ]


def test_users_keep_the_latest_identify_of_a_load() -> None:
    p = plan(
        {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
    )
    assert [(r["id"], r["plan"]) for r in tables(p)["web.users"].rows] == [("u1", "pro")]
    assert len(tables(p)["web.identifies"].rows) == 2


def test_group_makes_groups_and_accounts_rows() -> None:
    p = plan({"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}})
    by = tables(p)
    assert by["web.groups"].rows[0]["group_id"] == "g1"
    assert by["web.groups"].rows[0]["name"] == "Initech"
    assert by["web.accounts"].upsert
    assert by["web.accounts"].rows[0]["id"] == "g1"
    assert by["web.accounts"].rows[0]["name"] == "Initech"


def test_alias_page_and_screen() -> None:
    p = plan(
        {"type": "alias", "userId": "u2", "previousId": "a1"},
        {
            "type": "page",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"name": "Pricing", "path": "/pricing", "url": "https://x/pricing"},
        },
        {"type": "screen", "name": "Home", "properties": {"variant": 2}},
    )
    by = tables(p)
    assert by["web.aliases"].rows[0]["previous_id"] == "a1"
    page = by["web.pages"].rows[0]
    assert (page["name"], page["category"], page["path"]) == ("Pricing", "Docs", "/pricing")
    assert by["web.screens"].rows[0]["name"] == "Home"
    assert by["web.screens"].rows[0]["variant"] == 2


def test_properties_named_like_standard_columns_get_an_underscore() -> None:
    p = plan(
        {
            "type": "track",
            "event": "Clicked",
            "properties": {
                "user_id": "not-the-user",
                "receivedAt": "x",
                "event": "e",
                "id": 7,
                "context": {"ip": "1.2.3.4"},
                "open": True,
            },
        },
        {"type": "track", "event": "Clicked", "properties": {"anonymous": {"id": "nested"}}},
    )
    row, nested = tables(p)["web.clicked"].rows
    assert nested["_anonymous_id"] == "nested"  # the flattened name is what counts
    assert row["_user_id"] == "not-the-user"
    assert row["_received_at"] == "x"
    assert row["_event"] == "e"
    assert row["_id"] == 7
    assert row["_context_ip"] == "1.2.3.4"
    assert row["_open"] is True  # reserved word
    assert row["event"] == "clicked" and row["id"] == "m1"


def test_event_table_names() -> None:
    p = plan(
        {"type": "track", "event": "101 Account Update"},
        {"type": "track", "event": "Pages"},
        {"type": "track", "event": "日本語"},
    )
    assert set(tables(p)) == {"web.tracks", "web._101_account_update", "web._pages"}
    (discard,) = p.discards
    assert (discard.table, discard.column, discard.row_id, discard.value) == (
        "tracks",
        "event",
        "m3",
        "日本語",
    )
    assert tables(p)["web.tracks"].rows[2]["event_text"] == "日本語"


def test_long_names_fit_the_warehouse() -> None:
    long_key = "aVeryLongPropertyNameThatGoesOnAndOn" * 3
    p = plan({"type": "track", "event": "Clicked", "properties": {long_key: 1}}, limit=63)
    columns = tables(p)["web.clicked"].columns
    assert all(len(c) <= 63 for c in columns)
    assert len([c for c in columns if c.startswith("a_very_long")]) == 1


def test_schema_is_the_snake_cased_source_id() -> None:
    events = stored([{"type": "track", "event": "Clicked"}], source="My-Site")
    p = Planner("main", Namer(120), lambda schema: {}).plan(events, NOW)
    assert {b.schema for b in p.batches} == {"my_site"}


def test_columns_only_for_values_present_and_unknown_types_skipped() -> None:
    p = plan(
        {"type": "track", "event": "Clicked", "properties": {"a": None, "b": []}},
        {"type": "unknown-call"},
    )
    assert "a" not in tables(p)["web.clicked"].columns
    assert tables(p)["web.clicked"].rows[0]["b"] == "[]"
    assert p.skipped == 1


WAREHOUSES = [
    ({}, True),
    ({"All": False}, True),  # `All: false` does not block warehouses
    ({"All": False, "Warehouses": True}, True),
    ({"Warehouses": {"all": False}}, False),
    ({"Warehouses": False}, False),
    ({"Warehouses": {"all": True}}, True),
    ({"Warehouses": {"warehouseIds": ["main"]}}, True),
    ({"Warehouses": {"warehouseIds": ["other"]}}, False),
    ({"Warehouses": {"all": False, "warehouseIds": ["main"]}}, True),
]


@pytest.mark.parametrize(
    ("integrations", "loaded"),
    WAREHOUSES,
    ids=[msgspec.json.encode(i).decode() for i, _ in WAREHOUSES],
)
def test_integrations_warehouses_option(integrations: dict[str, Any], loaded: bool) -> None:
    p = plan({"type": "track", "event": "Clicked", "integrations": integrations})
    assert (p.loaded, p.skipped) == ((1, 0) if loaded else (0, 1))


def test_duplicate_message_ids_in_one_load_are_loaded_once() -> None:
    events = stored([{"type": "track", "event": "A"}, {"type": "track", "event": "B"}])
    again = StoredEvent(3, "web", "m1", "track", None, 0, events[0].payload)
    p = Planner("main", Namer(120), lambda schema: {}).plan([*events, again], NOW)
    assert p.duplicates == 1
    assert len(tables(p)["web.tracks"].rows) == 2


def test_sources_of_the_warehouse() -> None:
    events = [
        *stored([{"type": "track", "event": "A"}]),
        *stored([{"type": "track", "event": "B"}], "app"),
    ]
    p = Planner("main", Namer(120), lambda schema: {}, sources=["app"]).plan(events, NOW)
    assert {b.schema for b in p.batches} == {"app"}
    assert p.skipped == 1


def test_a_payload_that_is_not_json_is_discarded_not_fatal() -> None:
    bad = StoredEvent(1, "web", "m1", "track", None, 0, b"{not json")
    huge = StoredEvent(
        2,
        "web",
        "m2",
        "track",
        None,
        0,
        b'{"type":"track","event":"A","messageId":"m2","properties":{"x":1e400}}',
    )
    p = Planner("main", Namer(120), lambda schema: {}).plan([bad, huge], NOW)
    assert [(d.row_id, d.reason) for d in p.discards] == [
        ("m1", "the stored event is not a JSON object")
    ]
    assert tables(p)["web.a"].rows[0]["x"] == float("inf")
