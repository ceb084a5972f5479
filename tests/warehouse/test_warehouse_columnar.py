"""The columnar planner against the exact one: the same rows, types, discards and counts.

The exact planner (planner.py) is the reference. Every case plans the same events both ways and
compares what a load would write; varied events come from seeded generators (tame ones must
stay on the fast path, wild ones may fall back to the exact planner, never differ from it).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from sluice.store.base import StoredEvent
from sluice.store.columns import LogColumns
from sluice.warehouse import compiled
from sluice.warehouse.base import CappedEvents, ColumnType, Discard, TableBatch
from sluice.warehouse.columnar import ColumnarPlanner
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.naming import Namer
from sluice.warehouse.planner import Plan, Planner
from sluice.warehouse.shape import ExactPlanNeeded

C = ColumnType
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = "2026-11-28T10:00:00.123Z"
Known = dict[str, dict[str, dict[str, ColumnType]]]


def stored(msgs: Sequence[dict[str, Any] | bytes], source: str = "web") -> list[StoredEvent]:
    """Events as the collector stores them (the event name only when it is a string)."""
    events = []
    for seq, msg in enumerate(msgs, 1):
        if isinstance(msg, bytes):
            events.append(StoredEvent(seq, source, f"raw{seq}", "track", "Raw", 0, msg))
            continue
        msg = {"messageId": f"m{seq}", "receivedAt": T1, **msg}
        src = msg.pop("_source", source)
        event = msg.get("event")
        events.append(
            StoredEvent(
                seq,
                src,
                str(msg["messageId"]),
                msg["type"],
                event if isinstance(event, str) else None,
                0,
                msgspec.json.encode(msg),
            )
        )
    return events


def exact(events: list[StoredEvent], known: Known, **kw: Any) -> tuple[Plan, Known]:
    planner = Planner("main", Namer(120), _columns(known), **kw)
    return planner.plan(events, NOW), planner._known


def columnar(
    events: list[StoredEvent], known: Known, piece: int = 1000, as_columns: bool = False, **kw: Any
) -> tuple[Plan, Known, duckdb.DuckDBPyConnection]:
    """The columnar plan of `events`, added in pieces of `piece` rows, or `as_columns`: the
    whole chunk at once, column by column, as a SQLite store hands it over."""
    planner = Planner("main", Namer(120), _columns(known), **kw)
    engine = duckdb.connect()
    chunk = ColumnarPlanner(planner, engine).chunk()
    if as_columns:
        chunk.add(LogColumns.from_rows(events))
    else:
        for start in range(0, len(events), piece):
            chunk.add(events[start : start + piece])
    return chunk.plan(NOW), planner._known, engine


def _columns(known: Known) -> Callable[[str], dict[str, dict[str, ColumnType]]]:
    return lambda schema: {t: dict(c) for t, c in known.get(schema, {}).items()}


def rows_of(batch: TableBatch) -> list[dict[str, Any]]:
    """What the batch would insert: columns with a value (missing means NULL)."""
    if batch.staged is None:
        return [dict(row) for row in batch.rows]
    result = batch.staged.engine.execute(batch.staged.query)
    names = [d[0] for d in result.description]
    rows = result.fetchall()
    return [{n: v for n, v in zip(names, row, strict=True) if v is not None} for row in rows]


def _key(row: dict[str, Any]) -> str:
    """A row as comparable text: instants in UTC, floats exactly, and types kept apart."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return ["ts", value.astimezone(UTC).isoformat()]
        return [type(value).__name__, repr(value)]

    return json.dumps({k: plain(v) for k, v in row.items()}, sort_keys=True)


def assert_same(
    events: list[StoredEvent], known: Known | None = None, as_columns: bool = False, **kw: Any
) -> Plan:
    """Plan both ways; fail on any difference. Returns the columnar plan."""
    known = known or {}
    want, want_known = exact(events, known, **kw)
    got, got_known, _ = columnar(events, known, as_columns=as_columns, **kw)
    assert (got.events, got.loaded, got.skipped, got.duplicates) == (
        want.events,
        want.loaded,
        want.skipped,
        want.duplicates,
    )
    by_table = {(b.schema, b.table): b for b in want.batches}
    assert {(b.schema, b.table) for b in got.batches} == set(by_table)
    for batch in got.batches:
        reference = by_table[(batch.schema, batch.table)]
        assert batch.upsert is reference.upsert
        got_rows, want_rows = rows_of(batch), rows_of(reference)
        assert batch.row_count == len(got_rows) == len(want_rows), batch.table
        assert sorted(map(_key, got_rows)) == sorted(map(_key, want_rows)), batch.table
        # Columns the rows use have the same types; more columns only when the table has them.
        for column, column_type in reference.columns.items():
            assert batch.columns[column] is column_type, (batch.table, column)
        table_known = known.get(batch.schema, {}).get(batch.table, {})
        for column in batch.columns.keys() - reference.columns.keys():
            assert column in table_known and all(column not in r for r in got_rows)
    assert set(got.new_columns) == set(want.new_columns)
    assert Counter(got.discards) == Counter(want.discards)
    assert set(got.capped) == set(want.capped)
    # What both planners believe the warehouse holds agrees (the exact one also remembers the
    # types `tracks` lent an event table for columns its rows never had).
    for schema, tables in want_known.items():
        for table, columns in tables.items():
            mine = got_known.get(schema, {}).get(table, {})
            assert {c: t for c, t in columns.items() if c in mine} == mine, table
    return got


def test_tracks_and_their_event_tables() -> None:
    plan = assert_same(
        stored(
            [
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": "u1",
                    "anonymousId": "a1",
                    "sentAt": T1,
                    "context": {"app": {"version": "1.2"}, "library": {"name": "analytics.js"}},
                    "properties": {
                        "orderId": "o1",
                        "total": 27.5,
                        "products": [{"sku": "p1", "price": 19}],
                        "shipping": {"address": {"city": "Paris"}},
                        "coupon": None,
                        "empty": {},
                    },
                },
                {"type": "track", "event": "Order Completed", "properties": {"total": 3}},
                {"type": "track", "event": "Signed Up", "properties": {"plan": "pro"}},
            ]
        )
    )
    assert all(b.staged is not None for b in plan.batches)


def _capped_reason(cap: int) -> str:
    return (
        f"the source has {cap} event tables (max_event_tables):"
        " this event name's events load into tracks only"
    )


def test_event_tables_past_the_cap_go_to_tracks_only() -> None:
    # `clicked` exists; one more table fits: `Signed Up`, the first new name in log order.
    known: Known = {
        "web": {"clicked": {"id": C.VARCHAR}, "tracks": {"id": C.VARCHAR}, "pages": {}},
        "app": {"clicked": {"id": C.VARCHAR}, "viewed": {"id": C.VARCHAR}},
    }
    track = [
        ("Signed Up", {"plan": "pro"}),
        ("Viewed", {"n": 1}),
        ("Clicked", {"x": 1}),
        ("Viewed", {"n": 2, "dup": True}),
        ("viewed", {"n": 3}),  # the same table name as `Viewed`
        ("Added", {"sku": "a"}),
        ("Signed Up", {"plan": "free"}),
    ]
    msgs: list[dict[str, Any]] = [
        {"type": "track", "event": name, "properties": props} for name, props in track
    ]
    msgs.append({"type": "page", "name": "Home"})
    msgs.append({"type": "track", "event": "Viewed", "_source": "app", "properties": {"n": 4}})
    events = stored(msgs)
    events.append(events[3])  # a repeated messageId: skipped, not counted
    # `viewed` was capped by an earlier load: counted, but no discard this time.
    plan = assert_same(events, known, max_event_tables=2, capped_of=lambda s: {"viewed"})
    assert {b.table: b.row_count for b in plan.batches if b.schema == "web"} == {
        "tracks": 7,
        "signed_up": 2,
        "clicked": 1,
        "pages": 1,
    }
    assert {b.table for b in plan.batches if b.schema == "app"} == {"tracks", "viewed"}
    assert set(plan.capped) == {
        CappedEvents("web", "viewed", "Viewed", 3, first=False),
        CappedEvents("web", "added", "Added", 1, first=True),
    }
    assert [d for d in plan.discards if d.column == "event"] == [
        Discard("web", "tracks", "event", "m6", "Added", _capped_reason(2))
    ]
    (tracks,) = [b for b in plan.batches if (b.schema, b.table) == ("web", "tracks")]
    # The capped ones are in `tracks` as any track is, `event` naming the table they would have.
    assert sorted((r["event"], r["event_text"]) for r in rows_of(tracks)) == [
        ("added", "Added"),
        ("clicked", "Clicked"),
        ("signed_up", "Signed Up"),
        ("signed_up", "Signed Up"),
        ("viewed", "Viewed"),
        ("viewed", "Viewed"),
        ("viewed", "viewed"),
    ]


@pytest.mark.parametrize("piece", [1, 3, 100], ids=["pieces-of-1", "pieces-of-3", "one-piece"])
def test_the_cap_admits_new_names_in_log_order_on_both_planners(piece: int) -> None:
    names = [f"E{i % 7}" for i in range(30)]
    events = stored([{"type": "track", "event": n, "properties": {"i": i}} for i, n in
                     enumerate(names)])  # fmt: skip
    for cap in (0, 1, 3, 7):
        want, _ = exact(events, {}, max_event_tables=cap)
        got, _, _ = columnar(events, {}, piece, max_event_tables=cap)
        tables = {b.table for b in want.batches} - {"tracks"}
        assert tables == {f"e{i}" for i in range(cap)}
        assert {b.table for b in got.batches} - {"tracks"} == tables
        assert set(got.capped) == set(want.capped)
        assert sum(c.events for c in want.capped) == sum(n >= f"E{cap}" for n in names)
        assert Counter(got.discards) == Counter(want.discards)


def test_every_call_type() -> None:
    assert_same(
        stored(
            [
                {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c", "age": 36}},
                {"type": "identify", "anonymousId": "a9", "traits": {"email": "x@y.z"}},
                {"type": "identify", "userId": "", "traits": {"email": "empty id"}},
                {"type": "identify", "userId": "u1", "traits": {"age": 37, "plan": "pro"}},
                {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Initech"}},
                {"type": "group", "groupId": 42, "traits": {"employees": 5, "group_id": "x"}},
                {"type": "alias", "userId": "u1", "previousId": "a1"},
                {"type": "alias", "userId": "u2"},
                {"type": "page", "name": "Home", "properties": {"path": "/", "name": "Ignored"}},
                {"type": "page", "properties": {"name": "From properties", "category": "Docs"}},
                {"type": "screen", "name": "Main", "category": "App", "properties": {"x": 1}},
            ]
        )
    )


def test_casts_and_discards_against_existing_columns() -> None:
    known: Known = {
        "web": {
            "paid": {
                "id": C.VARCHAR,
                "amount": C.INTEGER,
                "price": C.FLOAT,
                "note": C.VARCHAR,
                "flag": C.BOOLEAN,
                "at": C.TIMESTAMP,
            },
            "tracks": {"id": C.VARCHAR, "received_at": C.TIMESTAMP},
        }
    }
    values = [
        {"amount": 3, "price": 3, "note": 4, "flag": True, "at": T1},
        {"amount": 3.0, "price": 2.5, "note": True, "flag": "yes", "at": "2026-11-28"},
        {"amount": 3.5, "price": "2.5", "note": 2.25, "flag": 1, "at": "not a date"},
        {"amount": "12", "price": 2**70, "note": [1, "a"], "flag": None, "at": 5},
        {"amount": 2**70, "price": 1e300, "note": "2026-11-28T10:00:00Z", "at": [T1]},
        {"amount": True, "price": False, "note": "", "at": "2026-11-28T10:00:00+02:00"},
        {"amount": -0.0, "price": -0.0, "note": "x" * 3000, "at": "2026-02-30"},
    ]
    plan = assert_same(
        stored([{"type": "track", "event": "Paid", "properties": v} for v in values]), known
    )
    assert plan.discards, "the cases discard values"


def test_new_columns_take_their_first_value_type() -> None:
    assert_same(
        stored(
            [
                {"type": "track", "event": "E", "properties": {"a": None, "b": {}, "c": "x"}},
                {"type": "track", "event": "E", "properties": {"a": 1, "b": {"x": 2}}},
                {"type": "track", "event": "E", "properties": {"a": 1.5, "c": 3, "d": T1}},
                {"type": "track", "event": "E", "properties": {"a": "t", "d": "nope", "e": 2**64}},
                {"type": "track", "event": "F", "context": {"ip": 1}, "properties": {"b": "s"}},
                {"type": "track", "event": "F", "context": {"ip": "1.2.3.4"}},
            ]
        )
    )


def test_event_tables_share_the_types_of_tracks() -> None:
    known: Known = {"web": {"tracks": {"id": C.VARCHAR, "context_x": C.INTEGER}}}
    assert_same(
        stored(
            [
                {"type": "track", "event": "A", "context": {"x": "text", "y": 1}},
                {"type": "track", "event": "B", "context": {"y": "now text", "x": 5}},
            ]
        ),
        known,
    )


def test_a_hand_changed_column_in_an_event_table_keeps_its_type() -> None:
    known: Known = {
        "web": {
            "tracks": {"id": C.VARCHAR, "user_id": C.VARCHAR},
            "a": {"id": C.VARCHAR, "user_id": C.INTEGER},
        }
    }
    assert_same(stored([{"type": "track", "event": "A", "userId": "u1"}]), known)


@pytest.mark.parametrize("as_columns", [False, True], ids=["rows", "columns"])
def test_sources_integrations_and_duplicates(as_columns: bool) -> None:
    events = stored(
        [
            {"type": "track", "event": "A", "_source": "app"},
            {"type": "track", "event": "A", "integrations": {"Warehouses": {"all": False}}},
            {"type": "track", "event": "A", "integrations": {"Warehouses": False}},
            {"type": "track", "event": "A", "integrations": {"All": False}},
            {
                "type": "track",
                "event": "A",
                "integrations": {"Warehouses": {"warehouseIds": ["main"]}},
            },
            {
                "type": "track",
                "event": "A",
                "integrations": {"Warehouses": {"warehouseIds": ["x"]}},
            },
            {"type": "track", "event": "A", "messageId": "dup", "properties": {"n": 1}},
            {"type": "identify", "messageId": "dup", "userId": "u1"},
            {
                "type": "track",
                "event": "A",
                "messageId": "dup2",
                "integrations": {"Warehouses": False},
            },
            {"type": "track", "event": "A", "messageId": "dup2", "properties": {"n": 2}},
        ]
    )
    plan = assert_same(events, sources=["web"], as_columns=as_columns)
    assert (plan.skipped, plan.duplicates) == (5, 1)


def test_names_the_way_segment_spells_them() -> None:
    assert_same(
        stored(
            [
                {
                    "type": "track",
                    "event": "101 Account Update",
                    "properties": {
                        "productID": "p",
                        "order": 1,
                        "user_id": "u",
                        "context_x": 1,
                        "a.b": 1,
                        "a/b~c": 2,
                        "Größe": "L",
                        "HTMLParser": True,
                    },
                },
                {"type": "track", "event": "Pages", "properties": {"id": "x", "event": "y"}},
            ]
        )
    )


@pytest.mark.parametrize(
    ("msgs", "reason"),
    [
        ([b"{not json"], "JSON"),
        ([b'["an array"]'], "object"),
        ([{"type": "track", "event": "E", "properties": {"$$": 1}}], "letter"),
        (
            [{"type": "track", "event": "E", "properties": {"productId": 1, "product_id": 2}}],
            "two keys",
        ),
        ([{"type": "track", "event": "日本語"}], "event"),
        (
            [{"type": "track", "event": "E", "properties": {"at": "2026-11-28T10:00:00.1234567Z"}}],
            "",
        ),
        ([b'{"type":"track","event":"E","messageId":"m","properties":{"a":1,"a":2}}'], "repeats"),
    ],
    ids=[
        "invalid-json",
        "not-an-object",
        "no-letters",
        "collision",
        "no-table",
        "odd-iso",
        "dup-key",
    ],
)
@pytest.mark.parametrize("as_columns", [False, True], ids=["rows", "columns"])
def test_what_only_the_exact_planner_does(msgs: list[Any], reason: str, as_columns: bool) -> None:
    events = stored(msgs)
    try:
        plan, _, _ = columnar(events, {}, as_columns=as_columns)
    except ExactPlanNeeded as exc:
        assert reason.lower() in str(exc).lower()
    else:  # reproduced after all: then it must be the same
        assert_same(events, as_columns=as_columns)
        assert plan.batches


def test_a_piece_the_columnar_planner_gives_up_on_keeps_every_event() -> None:
    """A track whose name is in neither the column nor its (truncated) payload sends the chunk
    to the exact planner: the events of the same piece sorted before it go there too."""
    (good,) = stored([{"type": "track", "event": "Kept"}])
    bad = StoredEvent(2, "web", "m2", "track", None, 0, b'{"type":"track","eve')
    planner = Planner("main", Namer(120), _columns({}))
    chunk = ColumnarPlanner(planner, duckdb.connect()).chunk()
    chunk.add([good, bad])
    with pytest.raises(ExactPlanNeeded):
        chunk.plan(NOW)
    assert [e.seq for piece in chunk.pieces(10) for e in piece] == [1, 2]


def test_events_added_in_pieces_plan_as_one_chunk() -> None:
    msgs = [
        {"type": "identify", "userId": f"u{i % 7}", "traits": {"n": i, f"k{i % 5}": i}}
        for i in range(60)
    ]
    events = stored(msgs)
    whole, _, _ = columnar(events, {}, piece=1000)
    pieces, _, _ = columnar(events, {}, piece=7)
    assert {b.table: rows_of(b) for b in whole.batches} == {
        b.table: rows_of(b) for b in pieces.batches
    }
    assert_same(events)


def _value(rng: random.Random, wild: bool) -> Any:
    choices: list[Callable[[], Any]] = [
        lambda: rng.choice(["a", "b", "", "Zürich", "x y", "{curly}", "1.5", "true"]),
        lambda: rng.randint(-(10**6), 10**6),
        lambda: round(rng.uniform(-1000, 1000), rng.randint(0, 4)),
        lambda: rng.random() < 0.5,
        lambda: None,
        lambda: T1,
        lambda: "2026-11-28",
        lambda: [rng.randint(0, 9), "s", {"k": 1.25}],
        lambda: {"inner": rng.choice([1, "x", None]), "deep": {"z": rng.random() < 0.5}},
        lambda: {},
    ]
    if wild:
        choices += [
            lambda: 2**70,
            lambda: rng.choice([1e-7, 1e21, 123456789012345678.0, float(rng.randint(0, 9))]),
            lambda: 'line\nbreak "quoted" \\ back',
            lambda: "2026-11-28T10:00:00+05:30",
            lambda: "\u0000nul",
            lambda: [1e-9, "é"],
        ]
    return rng.choice(choices)()


def _events(seed: int, count: int, wild: bool) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    keys = ["total", "price", "name", "createdAt", "tags", "nested", "flag", "plan", "x"]
    msgs: list[dict[str, Any]] = []
    for i in range(count):
        fields = {k: _value(rng, wild) for k in rng.sample(keys, rng.randint(0, 5))}
        kind = rng.choice(["track", "track", "track", "page", "identify", "group", "alias"])
        msg: dict[str, Any] = {"type": kind, "userId": f"u{rng.randint(0, 4)}"}
        if rng.random() < 0.3:
            msg["context"] = {
                "ip": "10.0.0.1",
                "page": {"url": f"/p/{i % 3}"},
                "x": fields.get("x"),
            }
        if rng.random() < 0.1:
            msg["messageId"] = f"m{rng.randint(1, count)}"  # repeats
        if kind == "track":
            msg["event"] = rng.choice(["Clicked", "Viewed", "Order Completed"])
            msg["properties"] = fields
        elif kind == "page":
            msg["name"] = rng.choice(["Home", None, 3])
            msg["properties"] = fields
        elif kind in ("identify", "group"):
            msg["traits"] = fields
            if kind == "group":
                msg["groupId"] = rng.choice(["g1", "g2", ""])
        msgs.append(msg)
    return msgs


@pytest.fixture(params=["compiled", "duckdb"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Plan with the compiled reader, and as an install without C extensions does (DuckDB reads
    every event, compiled.py)."""
    if request.param == "duckdb":
        monkeypatch.setenv(compiled.DISABLE_ENV, "1")
    elif compiled.scan() is None:
        pytest.skip("sluice.warehouse._scan is not built (no C compiler)")
    return str(request.param)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("as_columns", [False, True], ids=["rows", "columns"])
@pytest.mark.usefixtures("reader")
def test_varied_events_stay_on_the_fast_path_and_match(seed: int, as_columns: bool) -> None:
    known: Known = {}
    if seed % 2:  # a warehouse that already has some columns, some of other types
        known = {"web": {"clicked": {"total": C.INTEGER, "flag": C.VARCHAR, "price": C.BOOLEAN}}}
    plan = assert_same(stored(_events(seed, 300, wild=False)), known, as_columns=as_columns)
    assert all(b.staged is not None for b in plan.batches)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("as_columns", [False, True], ids=["rows", "columns"])
@pytest.mark.usefixtures("reader")
def test_wild_events_match_or_fall_back(seed: int, as_columns: bool) -> None:
    events = stored(_events(100 + seed, 300, wild=True))
    try:
        columnar(events, {}, as_columns=as_columns)
    except ExactPlanNeeded:
        return  # the loader plans it event by event: the reference itself
    assert_same(events, as_columns=as_columns)


def test_a_chunk_read_column_by_column_is_one_piece() -> None:
    """Columns come as a whole chunk; after rows they are taken as rows; after columns no
    piece is taken (the loader never does it: a mistake must not plan a chunk twice)."""
    events = stored([{"type": "identify", "userId": f"u{i}"} for i in range(4)])
    chunk = ColumnarPlanner(Planner("main", Namer(120), _columns({})), duckdb.connect()).chunk()
    chunk.add(events[:2])
    chunk.add(LogColumns.from_rows(events[2:]))
    assert chunk.plan(NOW).loaded == 4
    chunk = ColumnarPlanner(Planner("main", Namer(120), _columns({})), duckdb.connect()).chunk()
    chunk.add(LogColumns.from_rows(events[:2]))
    with pytest.raises(RuntimeError, match="no further pieces"):
        chunk.add(events[2:])


def test_a_chunk_as_columns_the_planner_gives_up_on_keeps_every_event() -> None:
    """A payload that is not UTF-8 sends a column chunk to the exact planner, whole."""
    events = stored([{"type": "track", "event": "Kept"}, {"type": "track", "event": "Also"}])
    bad = StoredEvent(3, "web", "m3", "track", "Bad", 0, b'{"type":"track","event":"\xff"}')
    chunk = ColumnarPlanner(Planner("main", Namer(120), _columns({})), duckdb.connect()).chunk()
    chunk.add(LogColumns.from_rows([*events, bad]))
    with pytest.raises(ExactPlanNeeded, match="UTF-8"):
        chunk.plan(NOW)
    assert [e.seq for piece in chunk.pieces(10) for e in piece] == [1, 2, 3]


def test_a_duckdb_warehouse_loads_rows_staged_in_another_duckdb(tmp_path: Path) -> None:
    events = stored(
        [
            {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {"type": "track", "event": "Paid", "properties": {"amount": 3}},
        ]
    )
    plan, _, _ = columnar(events, {})  # planned in an in-memory DuckDB of its own
    backend = DuckDBBackend(tmp_path / "w.duckdb")
    try:
        backend.load(plan.batches, plan.discards, "main", 3)
        query = backend._db.execute
        assert query("SELECT id, plan FROM web.users").fetchall() == [("u1", "pro")]
        assert query("SELECT count(*) FROM web.identifies").fetchall() == [(2,)]
        assert query("SELECT amount FROM web.paid").fetchall() == [(3,)]
    finally:
        backend.close()


def test_keys_first_seen_after_the_sample_are_found() -> None:
    msgs: list[dict[str, Any]] = [
        {"type": "track", "event": "E", "properties": {"a": i}} for i in range(230)
    ]
    msgs[215]["properties"]["late"] = {"deep": 1.5, "er": [1]}  # not among the first 200
    msgs[220]["properties"]["a"] = {"now": "an object"}  # a value that turns into an object
    msgs[225]["context"] = {"fresh": True}
    plan = assert_same(stored(msgs))
    table = next(b for b in plan.batches if b.table == "e")
    assert {"late_deep", "late_er", "a_now", "context_fresh"} <= table.columns.keys()


def test_payloads_not_written_by_the_collector() -> None:
    # Spaces, escapes, another number notation: read the same, checked against DuckDB's own
    # re-encoding of the event.
    raw = (
        b'{ "type": "track", "event": "E", "messageId": "m1", "receivedAt": "%s",'
        b' "properties": { "name": "caf\\u00e9 \\"x\\"", "n": 1.50, "m": 1E2 } }' % T1.encode()
    )
    events = [StoredEvent(1, "web", "m1", "track", "E", 0, raw)]
    plan = assert_same(events)
    row = rows_of(next(b for b in plan.batches if b.table == "e"))[0]
    assert (row["name"], row["n"], row["m"]) == ('café "x"', 1.5, 100.0)


def test_hour_24_is_python_s_to_judge_on_both_readers() -> None:
    """DuckDB casts T24:00:00 to the next midnight, Python refuses it: both readers (compiled,
    and DuckDB's for an event it cannot vouch for: an escape) leave it to Python."""
    events = stored(
        [
            {"type": "track", "event": "E", "properties": {"at": "2023-01-01T10:00:00Z"}},
            {"type": "track", "event": "E", "properties": {"at": "2023-01-01T24:00:00Z"}},
            {
                "type": "track",
                "event": "E",
                "properties": {"at": "2023-01-01T24:00:00Z"},
                "x": "\n",
            },
        ]
    )
    plan = assert_same(events)
    assert [(d.row_id, d.column) for d in plan.discards] == [("m2", "at"), ("m3", "at")]
