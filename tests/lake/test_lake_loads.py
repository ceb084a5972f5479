"""Loads into a real lake directory, read back by DuckDB: the same rows, columns, values and
types as the DuckDB warehouse makes of the same log; layout, evolution and discards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from lake_kit import T1, append, load, query, raw

from sluice.config import Settings
from sluice.lake.backend import LakeBackend
from sluice.lake.query import connect
from sluice.lake.storage import LocalStorage
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.base import ColumnType
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.loader import WarehouseLoader

MIXED: list[dict[str, Any]] = [
    {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "anonymousId": "a1",
        "context": {"library": {"name": "analytics.js"}, "page": {"url": "https://x.test/"}},
        "properties": {
            "total": 19.99,
            "quantity": 2,
            "coupon": "WINTER",
            "paid": True,
            "shipping": {"address": {"city": "Paris"}},
            "products": [{"sku": "p1", "price": 19}],
            "delivered_at": "2026-11-29T08:00:00Z",
            "user_id": "shadow",
        },
    },
    {"type": "track", "event": "Order Completed", "userId": "u2", "properties": {"total": 5.5}},
    {"type": "track", "event": "Signed Up", "userId": "u3", "properties": {"plan": "pro"}},
    {"type": "page", "name": "Home", "anonymousId": "a2", "properties": {"path": "/", "n": 1}},
    {"type": "screen", "name": "Cart", "userId": "u1", "properties": {"items": 3}},
    {"type": "identify", "userId": "u1", "traits": {"email": "u1@x.test", "logins": 4}},
    {"type": "identify", "userId": "u1", "traits": {"email": "new@x.test", "plan": "pro"}},
    {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}},
    {"type": "alias", "userId": "u9", "previousId": "a2"},
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def _rows(db: duckdb.DuckDBPyConnection, sql: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Column types and rows (as dicts, ordered by id) without the load's own columns."""
    result = db.execute(sql)
    names = [d[0] for d in result.description or ()]
    types = {d[0]: str(d[1]) for d in result.description or ()}
    skip = {"uuid_ts", "day", "hr"}
    rows = [
        {k: v for k, v in zip(names, r, strict=True) if k not in skip} for r in result.fetchall()
    ]
    return {k: t for k, t in types.items() if k not in skip}, rows


def test_the_lake_reads_back_as_the_warehouse_loads_the_same_log(
    store: SqliteStore, tmp_path: Path
) -> None:
    ids = append(store, *MIXED)
    report = load(store, tmp_path / "lake")
    assert report.events == len(MIXED) and report.discards == 0
    body = b'{"id": "main", "type": "duckdb"}'
    path = tmp_path / "warehouse.duckdb"
    WarehouseLoader(
        Settings(), store, body, backend_factory=lambda c: DuckDBBackend(path)
    ).load_once()
    with duckdb.connect(str(path), read_only=True) as wh:
        wh.execute("SET TimeZone = 'UTC'")
        tables = [
            t
            for (t,) in wh.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'"
            ).fetchall()
        ]
        expected = {t: _rows(wh, f'SELECT * FROM web."{t}" ORDER BY id') for t in tables}
    with connect(LakeBackend(LocalStorage(tmp_path / "lake"))) as lake:
        got = {t: _rows(lake, f'SELECT * FROM web."{t}" ORDER BY id') for t in tables}
        lake_tables = {
            t
            for (t,) in lake.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'"
            ).fetchall()
        }
    assert lake_tables == set(tables)
    assert set(tables) == {
        "tracks", "order_completed", "signed_up", "pages", "screens", "identifies", "users",
        "groups", "accounts", "aliases",
    }  # fmt: skip
    for table in tables:
        exp_types, exp_rows = expected[table]
        got_types, got_rows = got[table]
        assert got_types == exp_types, table
        assert got_rows == exp_rows, table
    # and what was sent, directly
    (row,) = query(
        tmp_path / "lake",
        "SELECT id, total, quantity, paid, shipping_address_city, products, delivered_at,"
        " _user_id, context_library_name FROM order_completed WHERE user_id = 'u1'",
    )
    assert row == (
        ids[0], 19.99, 2, True, "Paris", '[{"sku":"p1","price":19}]',
        datetime(2026, 11, 29, 8, tzinfo=UTC), "shadow", "analytics.js",
    )  # fmt: skip
    assert query(tmp_path / "lake", "SELECT email, plan FROM users") == [("new@x.test", "pro")]
    assert sorted(i for (i,) in query(tmp_path / "lake", "SELECT id FROM tracks")) == sorted(
        ids[:3]
    )


def test_files_are_partitioned_by_source_collection_day_and_hour(
    store: SqliteStore, tmp_path: Path
) -> None:
    append(store, {"type": "track", "event": "Signed Up", "properties": {"plan": "pro"}})
    append(
        store,
        {"type": "track", "event": "Signed Up", "receivedAt": "2026-11-29T23:59:59.999Z"},
        source="ios",
    )
    load(store, tmp_path / "lake")
    files = sorted(
        p.relative_to(tmp_path / "lake").as_posix() for p in (tmp_path / "lake").rglob("*.parquet")
    )
    assert files == [
        "ios/signed_up/day=2026-11-29/hr=23/part-000000000001-000000000002.parquet",
        "ios/tracks/day=2026-11-29/hr=23/part-000000000001-000000000002.parquet",
        "web/signed_up/day=2026-11-28/hr=10/part-000000000001-000000000002.parquet",
        "web/tracks/day=2026-11-28/hr=10/part-000000000001-000000000002.parquet",
    ]
    assert raw(tmp_path / "lake", "web/signed_up", "SELECT plan, day, hr FROM {t}") == [
        ("pro", date(2026, 11, 28), 10)
    ]
    # Views over both sources, and per source.
    assert query(tmp_path / "lake", "SELECT count(*) FROM tracks") == [(2,)]
    assert query(tmp_path / "lake", "SELECT count(*) FROM ios.tracks") == [(1,)]


def test_a_later_column_is_added_and_reads_null_in_earlier_files(
    store: SqliteStore, tmp_path: Path
) -> None:
    first = append(store, {"type": "track", "event": "Paid", "properties": {"amount": 10}})
    load(store, tmp_path / "lake")
    second = append(
        store, {"type": "track", "event": "Paid", "properties": {"amount": 12, "currency": "EUR"}}
    )
    load(store, tmp_path / "lake")
    rows = query(tmp_path / "lake", "SELECT id, amount, currency FROM paid ORDER BY id")
    assert rows == [(first[0], 10, None), (second[0], 12, "EUR")]
    paths = sorted((tmp_path / "lake" / "web" / "paid").rglob("*.parquet"))
    assert "currency" not in pq.read_schema(paths[0]).names
    assert "currency" in pq.read_schema(paths[1]).names
    backend = LakeBackend(LocalStorage(tmp_path / "lake"))
    assert backend.columns("web")["paid"]["currency"] is ColumnType.VARCHAR


def test_a_value_of_another_type_is_discarded_and_the_file_schema_stays(
    store: SqliteStore, tmp_path: Path
) -> None:
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": 10}})
    load(store, tmp_path / "lake")
    bad = append(store, {"type": "track", "event": "Paid", "properties": {"amount": "ten"}})
    report = load(store, tmp_path / "lake")
    assert report.discards == 1 and report.events == 1
    assert query(tmp_path / "lake", f"SELECT id, amount FROM paid WHERE id = '{bad[0]}'") == [
        (bad[0], None)
    ]
    for path in (tmp_path / "lake" / "web" / "paid").rglob("*.parquet"):
        assert str(pq.read_schema(path).field("amount").type) == "int64"
    assert query(
        tmp_path / "lake",
        "SELECT schema, table_name, column_name, row_id, value, reason FROM _sluice.discards",
    ) == [("web", "paid", "amount", bad[0], "ten", "text in an integer column")]
    discards = LakeBackend(LocalStorage(tmp_path / "lake")).discards()
    assert [(d.table, d.column, d.value) for d in discards] == [("paid", "amount", "ten")]


def test_widen_types_later_files_anew(store: SqliteStore, tmp_path: Path) -> None:
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": 10}})
    load(store, tmp_path / "lake")
    LakeBackend(LocalStorage(tmp_path / "lake")).widen("web", "paid", "amount", ColumnType.VARCHAR)
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": "ten"}})
    assert load(store, tmp_path / "lake").discards == 0
    assert sorted(query(tmp_path / "lake", "SELECT amount FROM paid")) == [("10",), ("ten",)]


def test_an_empty_lake_has_position_zero_and_no_directory(tmp_path: Path) -> None:
    backend = LakeBackend(LocalStorage(tmp_path / "nowhere"))
    assert backend.position("lake") == 0 and backend.columns("web") == {}
    assert backend.discards() == [] and backend.capped_events() == []
    backend.close()
    assert not (tmp_path / "nowhere").exists()


def test_receivedat_hours_split_one_load_into_partitions(
    store: SqliteStore, tmp_path: Path
) -> None:
    stamps = [T1, "2026-11-28T11:00:00.000Z", "2026-11-28T10:59:59.999Z", "1969-12-31T23:30:00Z"]
    ids = append(store, *({"type": "page", "name": "P", "receivedAt": s} for s in stamps))
    load(store, tmp_path / "lake")
    rows = query(tmp_path / "lake", "SELECT id, day, hr FROM pages ORDER BY id")
    assert sorted(rows) == sorted(
        [
            (ids[0], date(2026, 11, 28), 10),
            (ids[1], date(2026, 11, 28), 11),
            (ids[2], date(2026, 11, 28), 10),
            (ids[3], date(1969, 12, 31), 23),
        ]
    )


def test_a_load_frees_the_memory_its_reader_kept_for_reuse(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Each chunk's outputs, freed, wait for the next chunk's (warehouse/_pool.c); once the
    load is over the loader frees them (test_warehouse_scan_pool.py: the reuse itself)."""
    scan = pytest.importorskip("sluice.warehouse._scan", reason="built without a C compiler")
    events = ({"type": "track", "event": "Viewed", "properties": {"n": i}} for i in range(2000))
    append(store, *events)
    assert load(store, tmp_path / "lake", chunk=500).events == 2000
    assert scan.kept() == (0, 0)


def test_a_messageid_that_is_not_utf8_in_the_log_loads_with_its_neighbours(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Another writer put a messageId with bad bytes in the log: the load does not stop there
    (it read the whole log as rows, the id with U+FFFD in place of the bad bytes)."""
    before = append(store, {"type": "track", "event": "Paid"})
    payload = b'{"messageId":"\xffa","type":"track","event":"Paid","receivedAt":"%s"}' % T1.encode()
    with store._lock:
        store._db.execute(
            "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
            " VALUES ('web', CAST(x'ff61' AS TEXT), 'track', 'Paid', 0, ?)",
            (payload,),
        )
    after = append(store, {"type": "track", "event": "Paid"})
    report = load(store, tmp_path / "lake")
    assert report.events == 3
    ids = sorted(r[0] for r in query(tmp_path / "lake", "SELECT id FROM paid"))
    assert ids == sorted([*before, "\ufffda", *after])
