"""Loads from a real event log into real warehouses: DuckDB files, and PostgreSQL when it answers.

Schema evolution, upserts, deduplication on `id` across loads, exactly-once after a crash or a
lost position, discarded values and widening, through `WarehouseLoader` as the worker runs it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from sluice.config import Settings
from sluice.store.base import AppendBatch, NewEvent, StoredEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.base import (
    CappedEvents,
    ColumnType,
    SchemaChangeError,
    TableBatch,
    WarehouseBackend,
)
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.factory import WarehouseConfig
from sluice.warehouse.loader import WarehouseLoader

C = ColumnType
T1 = "2026-11-28T10:00:00.123Z"


@dataclass
class Warehouse:
    """One warehouse under test: how the loader opens it and how the test looks inside."""

    open: Callable[[], WarehouseBackend]
    query: Callable[[str], list[tuple[Any, ...]]]
    kind: str


def _duckdb(tmp_path: Path) -> Iterator[Warehouse]:
    path = tmp_path / "warehouse.duckdb"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(path), read_only=True) as db:
            return db.execute(sql).fetchall()

    yield Warehouse(lambda: DuckDBBackend(path), query, "duckdb")


def _postgres(url: str) -> Iterator[Warehouse]:
    """A fresh database (the `pg_url` fixture of tests/conftest.py)."""
    import psycopg

    from sluice.warehouse.postgres import PostgresBackend

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url) as db:
            return list(db.execute(sql).fetchall())

    yield Warehouse(lambda: PostgresBackend(url), query, "postgres")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        yield from _duckdb(tmp_path)
    else:
        yield from _postgres(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


_ids = iter(range(1, 1_000_000))


def append(store: SqliteStore, *msgs: dict[str, Any], source: str = "web") -> list[str]:
    """Append normalised events (as the collector stores them); returns their messageIds."""
    events = []
    for msg in msgs:
        msg = {"messageId": f"msg-{next(_ids)}", "receivedAt": T1, "timestamp": T1, **msg}
        payload = msgspec.json.encode(msg)
        events.append(NewEvent(source, msg["messageId"], msg["type"], msg.get("event"), 0, payload))
    store.append(AppendBatch(events=events))
    return [e.message_id for e in events]


def loader(
    store: SqliteStore, warehouse: Warehouse, chunk: int = 50_000, **config: Any
) -> WarehouseLoader:
    body = msgspec.json.encode({"id": "main", "type": warehouse.kind, **config})
    return WarehouseLoader(
        Settings(), store, body, backend_factory=lambda c: warehouse.open(), chunk_events=chunk
    )


def columns(warehouse: Warehouse, table: str, schema: str = "web") -> dict[str, ColumnType]:
    backend = warehouse.open()
    try:
        return backend.columns(schema).get(table, {})
    finally:
        backend.close()


def count(warehouse: Warehouse, table: str, schema: str = "web") -> int:
    return int(warehouse.query(f'SELECT count(*) FROM "{schema}"."{table}"')[0][0])


def test_first_load_creates_segment_tables(store: SqliteStore, warehouse: Warehouse) -> None:
    append(
        store,
        {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com", "age": 36}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"total": 9.5}},
        {"type": "page", "anonymousId": "a1", "name": "Home", "properties": {"path": "/"}},
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}},
        {"type": "alias", "userId": "u1", "previousId": "a1"},
    )
    report = loader(store, warehouse).load_once()
    assert report.rows == {
        "web.identifies": 1,
        "web.users": 1,
        "web.tracks": 1,
        "web.order_completed": 1,
        "web.pages": 1,
        "web.groups": 1,
        "web.accounts": 1,
        "web.aliases": 1,
    }
    assert (report.events, report.loaded, report.position) == (5, 5, 5)
    assert columns(warehouse, "order_completed") == {
        "id": C.VARCHAR,
        "user_id": C.VARCHAR,
        "received_at": C.TIMESTAMP,
        "timestamp": C.TIMESTAMP,
        "uuid_ts": C.TIMESTAMP,
        "event": C.VARCHAR,
        "event_text": C.VARCHAR,
        "total": C.FLOAT,
    }
    assert columns(warehouse, "identifies")["age"] is C.INTEGER
    assert warehouse.query('SELECT id, email, age FROM "web"."users"') == [
        ("u1", "ada@example.com", 36)
    ]
    assert warehouse.query('SELECT event, event_text FROM "web"."tracks"') == [
        ("order_completed", "Order Completed")
    ]
    assert loader(store, warehouse).load_once().events == 0  # nothing new: nothing read


def test_new_columns_are_added_by_later_loads(store: SqliteStore, warehouse: Warehouse) -> None:
    append(store, {"type": "track", "event": "Clicked", "properties": {"a": 1}})
    loader(store, warehouse).load_once()
    append(store, {"type": "track", "event": "Clicked", "properties": {"b": "x"}})
    report = loader(store, warehouse).load_once()
    assert [(t, c, ty) for _, t, c, ty in report.new_columns] == [("clicked", "b", C.VARCHAR)]
    assert columns(warehouse, "clicked")["b"] is C.VARCHAR
    rows = warehouse.query('SELECT a, b FROM "web"."clicked" ORDER BY received_at, a NULLS LAST')
    assert sorted(rows, key=repr) == sorted([(1, None), (None, "x")], key=repr)


def test_users_and_accounts_keep_the_latest_state(store: SqliteStore, warehouse: Warehouse) -> None:
    append(
        store,
        {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
        {"type": "group", "groupId": "g1", "traits": {"seats": 5}},
    )
    loader(store, warehouse).load_once()
    append(
        store,
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        {"type": "identify", "userId": "u2", "traits": {"plan": "free"}},
        {"type": "group", "groupId": "g1", "traits": {"seats": 9}},
    )
    loader(store, warehouse).load_once()
    assert sorted(warehouse.query('SELECT id, plan FROM "web"."users"')) == [
        ("u1", "pro"),
        ("u2", "free"),
    ]
    assert warehouse.query('SELECT id, seats FROM "web"."accounts"') == [("g1", 9)]
    assert count(warehouse, "identifies") == 3


def test_rows_whose_id_is_loaded_are_skipped(store: SqliteStore, warehouse: Warehouse) -> None:
    append(store, *[{"type": "track", "event": "Clicked"} for _ in range(5)])
    first = loader(store, warehouse, chunk=2)
    assert first.load_once().events == 5
    # The warehouse loses its position (restored from an older backup, say): the log is
    # loaded again, and every row is already there.
    backend = warehouse.open()
    try:
        backend.load([], [], "main", 0)
    finally:
        backend.close()
    report = loader(store, warehouse).load_once()
    assert report.events == 5
    assert count(warehouse, "tracks") == count(warehouse, "clicked") == 5


class ListLog:
    """A log as a list, to hold what the store's own deduplication would refuse."""

    def __init__(self, events: list[StoredEvent]) -> None:
        self.events = events

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return [e for e in self.events if e.seq > seq][:limit]


def test_an_id_loaded_by_an_earlier_chunk_is_not_loaded_again(warehouse: Warehouse) -> None:
    def event(seq: int, message_id: str, kind: str = "track", **msg: Any) -> StoredEvent:
        body = {"type": kind, "messageId": message_id, "receivedAt": T1, **msg}
        return StoredEvent(seq, "web", message_id, kind, None, 0, msgspec.json.encode(body))

    log = ListLog(
        [
            event(1, "m1", event="Clicked", properties={"n": 1}),
            event(2, "m1", event="Clicked", properties={"n": 2}),  # a retry >24 h later
            event(3, "m2", event="Clicked", properties={"n": 3}),
            event(4, "m3", "identify", userId="u1", traits={"n": 4}),
            event(5, "m3", "identify", userId="u1", traits={"n": 5}),
        ]
    )
    body = msgspec.json.encode({"id": "main", "type": warehouse.kind})
    report = WarehouseLoader(
        Settings(),
        log,
        body,
        lambda c: warehouse.open(),
        chunk_events=1,  # type: ignore[arg-type]
    ).load_once()
    assert report.events == 5
    assert sorted(warehouse.query('SELECT id, n FROM "web"."clicked"')) == [("m1", 1), ("m2", 3)]
    assert count(warehouse, "tracks") == 2
    assert warehouse.query('SELECT id, n FROM "web"."identifies"') == [("m3", 4)]


def test_values_that_do_not_fit_are_discarded_and_widen_lets_them_in(
    store: SqliteStore, warehouse: Warehouse
) -> None:
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": 10}})
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": 10.5}})
    report = loader(store, warehouse).load_once()
    assert report.discards == 1
    assert sorted(warehouse.query('SELECT amount FROM "web"."paid"'), key=repr) == sorted(
        [(10,), (None,)], key=repr
    )
    backend = warehouse.open()
    try:
        (discard,) = backend.discards()
        assert (discard.schema, discard.table, discard.column, discard.value) == (
            "web",
            "paid",
            "amount",
            "10.5",
        )
        assert "integer" in discard.reason
        with pytest.raises(SchemaChangeError):
            backend.widen("web", "paid", "amount", C.BOOLEAN)
        with pytest.raises(SchemaChangeError):
            backend.widen("web", "nope", "amount", C.FLOAT)
        backend.widen("web", "paid", "amount", C.FLOAT)
        assert backend.columns("web")["paid"]["amount"] is C.FLOAT
    finally:
        backend.close()
    append(store, {"type": "track", "event": "Paid", "properties": {"amount": 11.25}})
    assert loader(store, warehouse).load_once().discards == 0
    assert (11.25,) in warehouse.query('SELECT amount FROM "web"."paid"')


def test_warehouse_sources_and_integrations(store: SqliteStore, warehouse: Warehouse) -> None:
    append(store, {"type": "track", "event": "A"}, source="web")
    append(store, {"type": "track", "event": "B"}, source="app")
    append(
        store,
        {"type": "track", "event": "C", "integrations": {"Warehouses": {"warehouseIds": ["x"]}}},
        {"type": "track", "event": "D", "integrations": {"All": False}},
        source="app",
    )
    report = loader(store, warehouse, sources=["app"]).load_once()
    assert (report.events, report.loaded, report.skipped) == (4, 2, 2)
    assert set(report.rows) == {"app.tracks", "app.b", "app.d"}


def _tables(warehouse: Warehouse, schema: str = "web") -> set[str]:
    backend = warehouse.open()
    try:
        return set(backend.columns(schema))
    finally:
        backend.close()


def _capped(warehouse: Warehouse) -> list[CappedEvents]:
    backend = warehouse.open()
    try:
        return backend.capped_events()
    finally:
        backend.close()


def test_event_tables_past_the_cap_load_into_tracks_only(
    store: SqliteStore, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "sluice.warehouse.loader")
    capped_settings = {"settings": {"max_event_tables": 2}}
    track = [{"type": "track", "event": f"Event {i}", "properties": {"i": i}} for i in range(4)]
    append(store, *track, track[2], {"type": "page", "name": "Home"})
    append(store, {"type": "track", "event": "Event 3"}, source="app")  # its own schema
    report = loader(store, warehouse, **capped_settings).load_once()
    assert _tables(warehouse) == {"tracks", "event_0", "event_1", "pages"}
    assert _tables(warehouse, "app") == {"tracks", "event_3"}
    assert report.capped == {"web.event_2": 2, "web.event_3": 1}
    assert count(warehouse, "tracks") == 5
    assert sorted(warehouse.query('SELECT event, event_text FROM "web"."tracks"'))[2:] == [
        ("event_2", "Event 2"),
        ("event_2", "Event 2"),
        ("event_3", "Event 3"),
    ]
    assert _capped(warehouse) == [
        CappedEvents("web", "event_2", "Event 2", 2),
        CappedEvents("web", "event_3", "Event 3", 1),
    ]
    reason = (
        "the source has 2 event tables (max_event_tables): this event name's events load into"
        " tracks only"
    )
    backend = warehouse.open()
    try:
        discards = sorted(backend.discards(), key=lambda d: d.value)
    finally:
        backend.close()
    assert [(d.schema, d.table, d.column, d.value, d.reason) for d in discards] == [
        ("web", "tracks", "event", "Event 2", reason),
        ("web", "tracks", "event", "Event 3", reason),
    ]
    assert report.discards == 2
    logged = [r.getMessage() for r in caplog.records]
    assert logged == [
        "warehouse main: schema web has all the event tables it may have (max_event_tables):"
        f" events named {name!r} load into web.tracks only"
        for name in ("Event 2", "Event 3")
    ]

    # Later loads: a capped name is counted on (logged and discarded once only), a new name is
    # capped too, and the names with tables keep them.
    caplog.clear()
    append(store, track[2], track[0], {"type": "track", "event": "Event 9"})
    report = loader(store, warehouse, **capped_settings).load_once()
    assert (report.capped, report.discards) == ({"web.event_2": 1, "web.event_9": 1}, 1)
    assert [c.events for c in _capped(warehouse)] == [3, 1, 1]
    assert count(warehouse, "event_0") == 2
    assert [r.getMessage().split("named ")[1] for r in caplog.records] == [
        "'Event 9' load into web.tracks only"
    ]

    # Raising the cap gives the next names their tables from the next load on.
    append(store, track[2])
    report = loader(store, warehouse, settings={"max_event_tables": 3}).load_once()
    assert report.capped == {}
    assert count(warehouse, "event_2") == 1
    assert [c.events for c in _capped(warehouse)] == [3, 1, 1]  # what was counted stays


def test_the_cap_comes_from_settings_and_holds_on_the_exact_planner(
    store: SqliteStore, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two keys naming one column: the chunk is planned event by event, in pieces of 3.
    monkeypatch.setattr("sluice.warehouse.loader.READ_EVENTS", 3)
    append(
        store,
        *[{"type": "track", "event": f"E{i % 4}", "properties": {"n": i}} for i in range(8)],
        {"type": "track", "event": "E3", "properties": {"productId": 1, "product_id": 2}},
    )
    body = msgspec.json.encode({"id": "main", "type": warehouse.kind})
    report = WarehouseLoader(
        Settings(warehouse_max_event_tables=1),
        store,
        body,
        backend_factory=lambda c: warehouse.open(),
        chunk_events=100,
    ).load_once()
    assert _tables(warehouse) == {"tracks", "e0"}
    assert report.capped == {"web.e1": 2, "web.e2": 2, "web.e3": 3}
    assert report.discards == 3  # one per capped name, the first piece's or a later one's
    assert [(c.table, c.events) for c in _capped(warehouse)] == [("e1", 2), ("e2", 2), ("e3", 3)]


class CrashingDuckDB(DuckDBBackend):
    """Raises inside the load's transaction after writing some tables."""

    def __init__(self, path: Path, after_tables: int) -> None:
        super().__init__(path)
        self.left = after_tables

    def _load_batch(
        self, batch: TableBatch, existing: dict[str, ColumnType] | None, digested: set[str]
    ) -> None:
        if self.left == 0:
            raise RuntimeError("power cut")
        self.left -= 1
        super()._load_batch(batch, existing, digested)


def test_a_crash_in_the_middle_of_a_load_loses_and_doubles_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    path = tmp_path / "warehouse.duckdb"
    msgs = [
        {"type": "identify", "userId": f"u{i % 3}", "traits": {"n": i}}
        if i % 4 == 0
        else {"type": "track", "event": f"E{i % 3}", "properties": {"n": i}}
        for i in range(40)
    ]
    append(store, *msgs)
    body = msgspec.json.encode({"id": "main", "type": "duckdb"})

    def crashing(after_tables: int, chunk: int) -> WarehouseLoader:
        return WarehouseLoader(
            Settings(),
            store,
            body,
            lambda c: CrashingDuckDB(path, after_tables),
            chunk_events=chunk,
        )

    with pytest.raises(RuntimeError, match="power cut"):
        crashing(3, 1000).load_once()  # in the first and only chunk
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM _sluice.loads").fetchone() == (0,)
        assert db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'web'"
        ).fetchone() == (0,)
    with pytest.raises(RuntimeError, match="power cut"):
        crashing(12, 10).load_once()  # the first chunk commits, a later one fails
    report = WarehouseLoader(
        Settings(), store, body, lambda c: DuckDBBackend(path), chunk_events=7
    ).load_once()
    assert report.start_position > 0
    with duckdb.connect(str(path), read_only=True) as db:

        def rows(table: str) -> int:
            result = db.execute(f"SELECT count(*), count(DISTINCT id) FROM web.{table}").fetchone()
            assert result is not None and result[0] == result[1]
            return int(result[0])

        assert rows("tracks") == 30
        assert rows("e0") + rows("e1") + rows("e2") == 30
        assert rows("identifies") == 10
        assert rows("users") == 3
        assert db.execute("SELECT position FROM _sluice.loads").fetchone() == (40,)


def test_the_default_warehouse_is_a_duckdb_file_in_the_data_dir(
    store: SqliteStore, tmp_path: Path
) -> None:
    append(store, {"type": "track", "event": "Signed Up"})
    settings = Settings(data_dir=tmp_path / "data")
    body = msgspec.json.encode(WarehouseConfig("default", "duckdb"))
    report = WarehouseLoader(settings, store, body).load_once()
    assert report.rows == {"web.tracks": 1, "web.signed_up": 1}
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as db:
        assert db.execute("SELECT event_text FROM web.signed_up").fetchall() == [("Signed Up",)]


def test_many_chunks_load_in_log_order(store: SqliteStore, warehouse: Warehouse) -> None:
    for i in range(5):
        append(
            store,
            *[{"type": "identify", "userId": "u1", "traits": {"v": i * 10 + j}} for j in range(10)],
        )
    report = loader(store, warehouse, chunk=7).load_once()
    assert (report.events, report.position) == (50, 50)
    assert warehouse.query('SELECT v FROM "web"."users"') == [(49,)]
    assert count(warehouse, "identifies") == 50


def test_a_chunk_only_the_exact_planner_can_plan_still_loads(
    store: SqliteStore, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two keys naming one column: the columnar planner leaves the chunk to the exact planner,
    # which plans it (and commits it) piece by piece.
    monkeypatch.setattr("sluice.warehouse.loader.READ_EVENTS", 3)
    append(
        store,
        *[{"type": "track", "event": "Clicked", "properties": {"n": i}} for i in range(7)],
        {"type": "track", "event": "Clicked", "properties": {"productId": 1, "product_id": 2}},
    )
    report = loader(store, warehouse, chunk=100).load_once()
    assert (report.events, report.loaded, report.position) == (8, 8, 8)
    assert count(warehouse, "clicked") == 8
    assert warehouse.query('SELECT product_id FROM "web"."clicked" WHERE n IS NULL') == [(2,)]


def test_a_chunk_is_read_in_pieces_and_commits_whole(store: SqliteStore, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    append(
        store, *[{"type": "track", "event": f"E{i % 3}", "properties": {"n": i}} for i in range(9)]
    )
    body = msgspec.json.encode({"id": "main", "type": "duckdb"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sluice.warehouse.loader.READ_EVENTS", 2)
        with pytest.raises(RuntimeError, match="power cut"):
            WarehouseLoader(
                Settings(), store, body, lambda c: CrashingDuckDB(path, 2), chunk_events=100
            ).load_once()
        with duckdb.connect(str(path), read_only=True) as db:  # the whole chunk rolled back
            assert db.execute("SELECT count(*) FROM _sluice.loads").fetchone() == (0,)
        report = WarehouseLoader(
            Settings(), store, body, lambda c: DuckDBBackend(path), chunk_events=100
        ).load_once()
    assert (report.events, report.position) == (9, 9)
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*), count(DISTINCT id) FROM web.tracks").fetchone() == (
            9,
            9,
        )


def test_text_travels_exactly(store: SqliteStore, warehouse: Warehouse) -> None:
    tricky = ["", 'a "quoted", comma', "two\nlines", "tab\there", "é日本", "nul\u0000byte", "\\"]
    append(
        store,
        *[
            {"type": "track", "event": "Said", "properties": {"text": t, "i": i}}
            for i, t in enumerate(tricky)
        ],
        {"type": "track", "event": "Said", "properties": {"i": 99}},
    )
    report = loader(store, warehouse).load_once()
    assert report.discards == 0
    rows = dict(warehouse.query('SELECT i, text FROM "web"."said"'))
    nul = "\ufffd" if warehouse.kind == "postgres" else "\u0000"  # PostgreSQL text has no NUL
    assert rows == {i: t.replace("\u0000", nul) for i, t in enumerate(tricky)} | {99: None}


def test_numbers_only_python_reads(store: SqliteStore, warehouse: Warehouse) -> None:
    # 1e400 is out of range for msgspec: the exact planner's lenient decoder makes it infinity.
    msg = {"type": "track", "event": "Measured", "messageId": "big", "receivedAt": T1}
    payload = msgspec.json.encode({**msg, "properties": {"x": 1.5, "y": 123.25}})
    payload = payload.replace(b"123.25", b"1e400")
    store.append(AppendBatch(events=[NewEvent("web", "big", "track", "Measured", 0, payload)]))
    append(store, {"type": "track", "event": "Measured", "properties": {"x": 2, "y": 1.5}})
    loader(store, warehouse).load_once()
    assert sorted(warehouse.query('SELECT x, y FROM "web"."measured"')) == [
        (1.5, float("inf")),
        (2.0, 1.5),
    ]


def _reload_from_start(warehouse: Warehouse) -> None:
    """The warehouse loses its position (restored from a backup, say): the log loads again."""
    backend = warehouse.open()
    try:
        backend.load([], [], "main", 0)
    finally:
        backend.close()


def _by_hand(path: Path, *statements: str) -> None:
    with duckdb.connect(str(path)) as db:
        for statement in statements:
            db.execute(statement)


def _digest_tables(warehouse: Warehouse) -> list[str]:
    return [
        name
        for (name,) in warehouse.query(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = '_sluice'"
            " AND table_name LIKE 'ids:%' ORDER BY 1"
        )
    ]


@pytest.mark.parametrize("digests", [True, False], ids=["digests", "small-tables"])
def test_duckdb_dedupes_through_id_digests_and_what_was_changed_by_hand(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: bool
) -> None:
    """DuckDB checks a large table's ids against their MD5 digests (`_sluice."ids:web.tracks"`),
    a small table's against the table itself; rows deleted, rows inserted by another tool,
    tables dropped and digest tables lost by hand still load exactly once."""
    if digests:  # every table is large enough to have them
        monkeypatch.setattr("sluice.warehouse.duckdb.DIGESTS_FROM_ROWS", 0)
    (warehouse,) = _duckdb(tmp_path)
    path = tmp_path / "warehouse.duckdb"

    def digests_of(table: str) -> list[tuple[Any, ...]]:
        if not digests:
            return []
        return warehouse.query(f'SELECT count(*), count(DISTINCT h) FROM "_sluice"."ids:{table}"')

    def expect(n: int) -> list[tuple[Any, ...]]:
        return [(n, n)] if digests else []

    append(store, *[{"type": "track", "event": "Clicked"} for _ in range(4)])
    assert loader(store, warehouse, chunk=2).load_once().events == 4
    assert digests_of("web.tracks") == expect(4)
    assert _digest_tables(warehouse) == (["ids:web.clicked", "ids:web.tracks"] if digests else [])

    _reload_from_start(warehouse)  # every id is there: ids are compared, nothing doubles
    append(store, {"type": "track", "event": "Clicked"})
    assert loader(store, warehouse).load_once().events == 5
    assert count(warehouse, "tracks") == count(warehouse, "clicked") == 5
    assert digests_of("web.tracks") == expect(5)

    # A row deleted by hand: the table no longer has a row per digest, the digests are made
    # again from its ids, and a reload loads the row again.
    _by_hand(path, "DELETE FROM web.tracks WHERE id = (SELECT min(id) FROM web.tracks)")
    _reload_from_start(warehouse)
    loader(store, warehouse).load_once()
    assert count(warehouse, "tracks") == 5
    assert digests_of("web.tracks") == expect(5)

    # Rows another tool inserted (an import of old Segment tables, say), one of them an event
    # the log holds but has not loaded yet: the digests are made again from the table's ids,
    # and the log's copy is not loaded twice.
    (later,) = append(store, {"type": "track", "event": "Clicked"})
    _by_hand(
        path,
        "CREATE TABLE web.old AS SELECT * FROM web.clicked LIMIT 2",
        f"UPDATE web.old SET id = CASE WHEN rowid = 0 THEN '{later}' ELSE 'from-segment' END",
        "INSERT INTO web.clicked SELECT * FROM web.old",
        "DROP TABLE web.old",
    )
    assert loader(store, warehouse).load_once().events == 1
    ids = [row[0] for row in warehouse.query("SELECT id FROM web.clicked")]
    assert len(ids) == len(set(ids)) == 7 and {later, "from-segment"} <= set(ids)
    assert count(warehouse, "tracks") == 6
    assert [n for n, _ in digests_of("web.clicked")] == [n for n, _ in expect(7)]

    # A table dropped by hand starts again with no digests; one from before digests gets them.
    dropped = ['DROP TABLE "_sluice"."ids:web.clicked"'] if digests else []
    _by_hand(path, "DROP TABLE web.tracks", *dropped)
    _reload_from_start(warehouse)
    loader(store, warehouse).load_once()
    assert (count(warehouse, "tracks"), count(warehouse, "clicked")) == (6, 7)
    assert digests_of("web.tracks") == expect(6)
    assert [n for n, _ in digests_of("web.clicked")] == [n for n, _ in expect(7)]
    _reload_from_start(warehouse)
    loader(store, warehouse).load_once()
    assert (count(warehouse, "tracks"), count(warehouse, "clicked")) == (6, 7)


def test_duckdb_tables_get_id_digests_once_they_are_large(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Digests are made from a table's ids when it reaches `DIGESTS_FROM_ROWS` rows, and dropped
    when it holds fewer again: a small table costs DuckDB one file block, not two."""
    monkeypatch.setattr("sluice.warehouse.duckdb.DIGESTS_FROM_ROWS", 5)
    (warehouse,) = _duckdb(tmp_path)
    path = tmp_path / "warehouse.duckdb"
    append(store, *[{"type": "track", "event": f"E{i % 2}"} for i in range(4)])
    loader(store, warehouse).load_once()
    assert _digest_tables(warehouse) == []
    append(store, *[{"type": "track", "event": "E0"} for _ in range(2)])
    loader(store, warehouse).load_once()
    assert _digest_tables(warehouse) == ["ids:web.tracks"]  # 6 rows; e0 has 4
    assert warehouse.query('SELECT count(*) FROM "_sluice"."ids:web.tracks"') == [(6,)]
    _reload_from_start(warehouse)
    append(store, {"type": "track", "event": "E0"})
    loader(store, warehouse).load_once()
    assert (count(warehouse, "tracks"), count(warehouse, "e0"), count(warehouse, "e1")) == (7, 5, 2)
    assert _digest_tables(warehouse) == ["ids:web.e0", "ids:web.tracks"]
    _by_hand(path, "DELETE FROM web.e0 WHERE rowid < 3")
    append(store, {"type": "track", "event": "E0"})
    loader(store, warehouse).load_once()
    assert _digest_tables(warehouse) == ["ids:web.tracks"]  # e0 is small again
    _reload_from_start(warehouse)  # the deleted rows come back, nothing doubles
    loader(store, warehouse).load_once()
    assert (count(warehouse, "tracks"), count(warehouse, "e0"), count(warehouse, "e1")) == (8, 6, 2)
    assert _digest_tables(warehouse) == ["ids:web.e0", "ids:web.tracks"]


_LOAD_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from sluice.warehouse.base import ColumnType, TableBatch
from sluice.warehouse.duckdb import DuckDBBackend

backend = DuckDBBackend(Path(sys.argv[1]))
columns = {"id": ColumnType.VARCHAR, "n": ColumnType.INTEGER}
rows = [{"id": f"m{i}", "n": i} for i in range(1000)]
backend.load([TableBatch("web", "tracks", columns, rows)], [], "main", 1000)
print("committed", flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no close: no checkpoint
"""


def test_rows_committed_to_the_write_ahead_log_survive_kill_9(tmp_path: Path) -> None:
    """Commits are not checkpointed (only at close, or when the log is large): a process killed
    right after a commit leaves its rows in DuckDB's log, which the next open replays."""
    path = tmp_path / "warehouse.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_THEN_DIE, str(path)], capture_output=True, text=True
    )
    assert done.returncode == -signal.SIGKILL and "committed" in done.stdout, done.stderr
    assert Path(f"{path}.wal").stat().st_size > 0  # the rows are in the log, not the file yet
    backend = DuckDBBackend(path)
    try:
        assert backend.position("main") == 1000
        assert backend.columns("web")["tracks"] == {"id": C.VARCHAR, "n": C.INTEGER}
    finally:
        backend.close()
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*), sum(n) FROM web.tracks").fetchone() == (1000, 499500)
    assert not Path(f"{path}.wal").exists()  # checkpointed at close


def test_a_sqlite_log_is_read_column_by_column_and_loads_as_rows_do(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader hands a warehouse's planner each chunk of a SQLite log column by column
    (store/columns.py); the tables are those of the same log handed over as rows."""
    for i in range(3):
        append(
            store,
            {"type": "track", "event": "Clicked", "userId": f"u{i}", "properties": {"n": i}},
            {"type": "identify", "userId": f"u{i}", "traits": {"plan": "pro", "n": i}},
            {"type": "page", "name": "Home", "anonymousId": f"a{i}"},
            {"type": "track", "event": "Bought", "properties": {"total": 1.5 * i}},
        )
        append(store, {"type": "track", "event": "Clicked", "properties": {"n": 9}}, source="app")
    append(store, {"type": "track", "event": "Clicked", "integrations": {"Warehouses": False}})
    read: list[int] = []
    real = store.read_columns

    def read_columns(seq: int, limit: int) -> Any:
        columns = real(seq, limit)
        read.append(0 if columns is None else len(columns))
        return columns

    monkeypatch.setattr(store, "read_columns", read_columns)

    def load(name: str, chunk: int) -> dict[str, list[tuple[Any, ...]]]:
        path = tmp_path / f"{name}.duckdb"
        body = msgspec.json.encode({"id": name, "type": "duckdb", "sources": ["web"]})
        report = WarehouseLoader(
            Settings(), store, body, lambda c: DuckDBBackend(path), chunk_events=chunk
        ).load_once()
        assert (report.events, report.skipped, report.loaded) == (16, 4, 12)
        with duckdb.connect(str(path), read_only=True) as db:
            tables = [t for (t,) in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'"
            ).fetchall()]  # fmt: skip
            return {
                t: sorted(db.execute(f'SELECT * EXCLUDE (uuid_ts) FROM web."{t}"').fetchall())
                for t in tables
            }

    by_columns = load("columns", chunk=5)
    assert read and sum(read) == 16  # every event came column by column
    monkeypatch.setattr("sluice.warehouse.columnar.ColumnarPlanner.takes_columns", False)
    read.clear()
    by_rows = load("rows", chunk=5)
    assert not read
    assert by_columns == by_rows
    assert set(by_columns) == {"tracks", "clicked", "bought", "identifies", "users", "pages"}
