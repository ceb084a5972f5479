"""The PostgreSQL warehouse backend against a real PostgreSQL: one fresh database per test.

Skipped when no PostgreSQL answers at 127.0.0.1:5432 (user postgres); a failure when `CI` is set.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql

from sluice.warehouse import compiled
from sluice.warehouse.base import (
    ColumnType,
    Discard,
    SchemaChangeError,
    StagedRows,
    TableBatch,
    WarehouseError,
    WarehouseUnavailable,
)
from sluice.warehouse.pgcopy import binary_rows, python_copy_rows
from sluice.warehouse.postgres import PostgresBackend
from sluice.warehouse.postgres_catalog import lock_key

C = ColumnType
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


@pytest.fixture
def url(pg_url: str) -> str:
    """A fresh database for this test (tests/conftest.py), dropped afterwards."""
    return pg_url


@pytest.fixture
def open_backend(url: str) -> Iterator[Callable[[], PostgresBackend]]:
    """A factory of backends on the test's database (each its own connection)."""
    opened: list[PostgresBackend] = []

    def open_() -> PostgresBackend:
        opened.append(PostgresBackend(url))
        return opened[-1]

    try:
        yield open_
    finally:
        for backend in opened:
            backend.close()


@pytest.fixture
def backend(open_backend: Callable[[], PostgresBackend]) -> PostgresBackend:
    return open_backend()


@pytest.fixture
def db(url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A plain connection to look at what the backend wrote."""
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def track(id_: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "received_at": T0, "event": "order_completed", **extra}


TRACK_COLUMNS = {"id": C.VARCHAR, "received_at": C.TIMESTAMP, "event": C.VARCHAR}


def batch(table: str, rows: list[dict[str, Any]], /, schema: str = "web", **cols: C) -> TableBatch:
    return TableBatch(schema, table, {**TRACK_COLUMNS, **cols}, rows)


def select(
    db: psycopg.Connection[tuple[Any, ...]], table: str, columns: str, schema: str = "web"
) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(columns), sql.Identifier(schema, table)
    )
    return db.execute(query).fetchall()


def test_creates_schema_and_table_with_segment_types(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    row = track("m1", total=27.5, quantity=3, member=True, sent_at=T0 - timedelta(seconds=1))
    columns = {"total": C.FLOAT, "quantity": C.INTEGER, "member": C.BOOLEAN, "sent_at": C.TIMESTAMP}
    backend.load([batch("order_completed", [row], **columns)], [], "loader", 1)

    types = db.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'web' AND table_name = 'order_completed' ORDER BY ordinal_position"
    ).fetchall()
    assert types == [
        ("id", "text"),
        ("received_at", "timestamp with time zone"),
        ("event", "text"),
        ("total", "double precision"),
        ("quantity", "bigint"),
        ("member", "boolean"),
        ("sent_at", "timestamp with time zone"),
    ]
    indexes = db.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'web' ORDER BY indexname"
    ).fetchall()
    # (The key's COLLATE "C" shows only where the database's default collation is another.)
    assert [i.removesuffix(' COLLATE "C")').removesuffix(")") for (i,) in indexes] == [
        "CREATE UNIQUE INDEX order_completed_pkey ON web.order_completed USING btree (id",
        "CREATE INDEX order_completed_received_at_idx ON web.order_completed "
        "USING brin (received_at) WITH (autosummarize='on'",
    ]
    assert select(db, "order_completed", "id, received_at, event, total, quantity, member") == [
        ("m1", T0, "order_completed", 27.5, 3, True)
    ]
    assert backend.columns("web") == {
        "order_completed": {"id": C.VARCHAR, "received_at": C.TIMESTAMP, "event": C.VARCHAR}
        | columns
    }
    assert backend.columns("nowhere") == {}
    assert backend.position("loader") == 1


def test_adds_columns_across_loads(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    backend.load([batch("tracks", [track("m1")])], [], "loader", 1)
    backend.load(
        [batch("tracks", [track("m2", plan="pro", seats=4)], plan=C.VARCHAR, seats=C.INTEGER)],
        [],
        "loader",
        2,
    )
    assert backend.columns("web")["tracks"] == TRACK_COLUMNS | {
        "plan": C.VARCHAR,
        "seats": C.INTEGER,
    }
    assert select(db, "tracks", "id, plan, seats") == [("m1", None, None), ("m2", "pro", 4)]
    # A later batch that uses only some columns leaves the others NULL.
    backend.load([batch("tracks", [track("m3", seats=1)], seats=C.INTEGER)], [], "loader", 3)
    assert select(db, "tracks", "id, plan, seats")[-1] == ("m3", None, 1)


def test_dedupes_on_id_across_loads(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    first = [track("m1", n=1), track("m2", n=2)]
    backend.load([batch("tracks", first, n=C.INTEGER)], [], "loader", 1)
    again = [track("m2", n=20), track("m3", n=3)]
    backend.load([batch("tracks", again, n=C.INTEGER)], [], "other", 1)
    assert select(db, "tracks", "id, n") == [("m1", 1), ("m2", 2), ("m3", 3)]


def test_upsert_replaces_the_row_with_that_id(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    cols = {"id": C.VARCHAR, "received_at": C.TIMESTAMP, "name": C.VARCHAR, "email": C.VARCHAR}
    first = [
        {"id": "u1", "received_at": T0, "name": "Ada", "email": "ada@example.com"},
        {"id": "u2", "received_at": T0, "name": "Bob", "email": "bob@example.com"},
    ]
    backend.load([TableBatch("web", "users", cols, first, upsert=True)], [], "loader", 1)
    later = T0 + timedelta(hours=1)
    second = [{"id": "u1", "received_at": later, "name": "Ada L.", "plan": "pro"}]
    plan_cols = {"id": C.VARCHAR, "received_at": C.TIMESTAMP, "name": C.VARCHAR, "plan": C.VARCHAR}
    backend.load([TableBatch("web", "users", plan_cols, second, upsert=True)], [], "loader", 2)
    assert select(db, "users", "id, received_at, name, email, plan") == [
        ("u1", later, "Ada L.", None, "pro"),
        ("u2", T0, "Bob", "bob@example.com", None),
    ]


def test_discards_are_kept_newest_first(backend: PostgresBackend) -> None:
    first = [Discard("web", "tracks", "total", "m1", "lots", "not a float")]
    backend.load([batch("tracks", [track("m1")])], first, "loader", 1)
    second = [
        Discard("web", "tracks", "seats", "m2", "many", "not an integer"),
        Discard("web", "tracks", "at", "m3", "yesterday", "not a timestamp"),
    ]
    backend.load([batch("tracks", [track("m2"), track("m3")])], second, "loader", 2)
    assert backend.discards() == [*reversed(second), *first]
    assert backend.discards(limit=1) == [second[1]]


def test_position_is_zero_until_a_load_commits(backend: PostgresBackend) -> None:
    assert backend.position("loader") == 0
    backend.load([], [], "loader", 7)
    assert backend.position("loader") == 7
    backend.load([batch("tracks", [track("m1")])], [], "loader", 9)
    assert (backend.position("loader"), backend.position("another")) == (9, 0)


@pytest.mark.parametrize(
    "bad_batch",
    [
        # Caught while copying into staging: a string for an integer column.
        pytest.param(
            batch("signed_up", [track("b1", n=1), track("b2", n="many")], n=C.INTEGER), id="copy"
        ),
        # Caught by PostgreSQL on INSERT: text into the existing bigint column `n`.
        pytest.param(batch("signed_up", [track("b1", n="many")], n=C.VARCHAR), id="insert"),
    ],
)
def test_a_failed_load_leaves_nothing_and_keeps_the_position(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]], bad_batch: TableBatch
) -> None:
    backend.load([batch("signed_up", [track("b0", n=0)], n=C.INTEGER)], [], "loader", 1)
    good = [
        batch("pages", [track("m1", plan="pro")], plan=C.VARCHAR),
        batch("tracks", [track("m2")], schema="app"),
    ]
    # The good batches are written first (the load orders tables by lock key), then one fails.
    assert all(lock_key(b.schema, b.table) < lock_key("web", "signed_up") for b in good)
    discard = Discard("web", "pages", "x", "m1", "y", "z")
    with pytest.raises(WarehouseError, match=r"signed_up|bigint"):
        backend.load([*good, bad_batch], [discard], "loader", 2)

    assert backend.position("loader") == 1
    assert backend.columns("web") == {"signed_up": TRACK_COLUMNS | {"n": C.INTEGER}}
    assert backend.columns("app") == {}
    assert select(db, "signed_up", "id, n") == [("b0", 0)]
    assert backend.discards() == []
    # The connection is fine afterwards and the same load can be redone.
    backend.load(good, [discard], "loader", 2)
    assert backend.position("loader") == 2
    assert select(db, "pages", "id, plan") == [("m1", "pro")]


def test_widen_integer_to_float_to_varchar(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    rows = [track("m1", n=1, at=T0), track("m2", n=None, at=None)]
    backend.load([batch("tracks", rows, n=C.INTEGER, at=C.TIMESTAMP)], [], "loader", 1)

    backend.widen("web", "tracks", "n", C.FLOAT)
    assert backend.columns("web")["tracks"]["n"] == C.FLOAT
    backend.load([batch("tracks", [track("m3", n=2.5)], n=C.FLOAT)], [], "loader", 2)
    assert select(db, "tracks", "id, n") == [("m1", 1.0), ("m2", None), ("m3", 2.5)]

    backend.widen("web", "tracks", "n", C.VARCHAR)
    backend.widen("web", "tracks", "at", C.VARCHAR)
    assert backend.columns("web")["tracks"] | {} == TRACK_COLUMNS | {
        "n": C.VARCHAR,
        "at": C.VARCHAR,
    }
    backend.load([batch("tracks", [track("m4", n="lots")], n=C.VARCHAR)], [], "loader", 3)
    assert select(db, "tracks", "id, n, at") == [
        ("m1", "1", "2026-11-28T10:00:00.000Z"),
        ("m2", None, None),
        ("m3", "2.5", None),
        ("m4", "lots", None),
    ]


@pytest.mark.parametrize(
    ("column", "new_type", "message"),
    [
        ("note", C.INTEGER, "cannot change web.tracks.note from varchar to integer"),
        ("n", C.BOOLEAN, "cannot change web.tracks.n from integer to boolean"),
        ("n", C.INTEGER, "web.tracks.n already is integer"),
        ("missing", C.VARCHAR, "no column 'missing' in web.tracks"),
    ],
    ids=["narrowing", "sideways", "same-type", "no-column"],
)
def test_widen_refuses_what_does_not_keep_every_value(
    backend: PostgresBackend, column: str, new_type: C, message: str
) -> None:
    row = track("m1", note="many", n=1)
    backend.load([batch("tracks", [row], note=C.VARCHAR, n=C.INTEGER)], [], "loader", 1)
    with pytest.raises(SchemaChangeError, match=re.escape(message)):
        backend.widen("web", "tracks", column, new_type)
    with pytest.raises(SchemaChangeError, match=re.escape("no table web.nothing")):
        backend.widen("web", "nothing", column, new_type)
    assert backend.columns("web")["tracks"] == TRACK_COLUMNS | {"note": C.VARCHAR, "n": C.INTEGER}


def test_a_load_with_one_known_id_dedupes_every_table(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """The direct COPY collides in one table: the whole load is redone through staging."""
    backend.load([batch("tracks", [track("m1", n=1)], n=C.INTEGER)], [], "loader", 1)
    second = [
        batch("pages", [track("p1"), track("p2")]),
        batch("tracks", [track("m0", n=0), track("m1", n=10), track("m2", n=2)], n=C.INTEGER),
        batch("screens", [track("s1")], schema="app"),
    ]
    backend.load(second, [], "loader", 2)
    assert select(db, "tracks", "id, n") == [("m0", 0), ("m1", 1), ("m2", 2)]
    assert select(db, "pages", "id") == [("p1",), ("p2",)]
    assert select(db, "screens", "id", "app") == [("s1",)]
    assert backend.position("loader") == 2


def test_nul_characters_are_stored_as_replacement_characters(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """JSON strings may hold U+0000, which PostgreSQL text cannot: it becomes U+FFFD."""
    users = {"id": C.VARCHAR, "name": C.VARCHAR}
    backend.load(
        [
            batch("tracks", [track("m1", note="a\x00b")], note=C.VARCHAR),
            TableBatch("web", "users", users, [{"id": "u\x00", "name": "\x00"}], upsert=True),
        ],
        [Discard("web", "tracks", "n", "m1", "\x00", "not an integer")],
        "loader",
        1,
    )
    assert select(db, "tracks", "id, note") == [("m1", "a\ufffdb")]
    assert select(db, "users", "id, name") == [("u\ufffd", "\ufffd")]
    assert backend.discards()[0].value == "\ufffd"


def test_columns_changed_by_hand_still_load(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """A column whose type is not the one the batch sends goes through a cast."""
    db.execute("CREATE SCHEMA web")
    db.execute(
        "CREATE TABLE web.tracks (id text PRIMARY KEY, received_at timestamptz, event text,"
        " n integer, note text)"
    )
    assert backend.columns("web")["tracks"]["n"] == C.INTEGER
    rows = [track("m1", n=5, note="x")]
    backend.load([batch("tracks", rows, n=C.INTEGER, note=C.VARCHAR)], [], "loader", 1)
    db.execute("ALTER TABLE web.tracks ALTER COLUMN n TYPE text")
    backend.load([batch("tracks", [track("m2", n=6)], n=C.INTEGER)], [], "loader", 2)
    assert select(db, "tracks", "id, n, note") == [("m1", "5", "x"), ("m2", "6", None)]


def test_identifiers_are_quoted(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    # Reserved words, a quote and the longest name PostgreSQL keeps (63).
    long = "p" * PostgresBackend.max_identifier_length
    cols = {"select": C.VARCHAR, "user": C.INTEGER, 'say_"hi"': C.BOOLEAN, long: C.FLOAT}
    row = track("m1", select="x", user=1, **{'say_"hi"': True, long: 1.5})
    backend.load([batch("order", [row], schema="group", **cols)], [], "loader", 1)
    backend.load(
        [batch("order", [track("m2", table="t")], schema="group", table=C.VARCHAR)], [], "l", 1
    )
    assert backend.columns("group")["order"] == TRACK_COLUMNS | cols | {"table": C.VARCHAR}
    assert select(db, "order", f'id, "select", "user", "say_""hi""", {long}, "table"', "group") == [
        ("m1", "x", 1, True, 1.5, None),
        ("m2", None, None, None, None, "t"),
    ]


def test_concurrent_loaders_do_not_deadlock(
    open_backend: Callable[[], PostgresBackend], db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """Loaders create the same tables, add the same columns and write the same ids, at once.

    Even rounds add a column to every table (exclusive locks); odd rounds only write rows into
    the columns the round before added (shared locks), the same ids in opposite orders.
    """
    # Enough rows per table that the loaders' inserts overlap in time.
    loaders, rounds, rows = 4, 6, 3000
    backends = [open_backend() for _ in range(loaders)]
    barrier = threading.Barrier(loaders)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for r in range(rounds):
                ids = [f"r{r}-{i}" for i in range(rows)]
                if n % 2:
                    ids.reverse()
                col = f"c{r - r % 2}"
                batches = [
                    batch(f"t{t}", [track(i, **{col: n}) for i in ids], **{col: C.INTEGER})
                    for t in (range(4) if n % 2 else reversed(range(4)))
                ]
                barrier.wait(timeout=30)
                backends[n].load(batches, [], f"loader-{n}", r + 1)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(loaders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert [backends[0].position(f"loader-{n}") for n in range(loaders)] == [rounds] * loaders
    for t in range(4):
        (count,) = db.execute(
            sql.SQL("SELECT count(*) FROM web.{}").format(sql.Identifier(f"t{t}"))
        ).fetchone() or (0,)
        assert count == rounds * rows
    assert set(backends[0].columns("web")["t0"]) == set(TRACK_COLUMNS) | {
        f"c{r}" for r in range(0, rounds, 2)
    }


def test_a_second_loader_with_the_same_id_waits(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    # Hold the loader's lock the way a load in progress does.
    db.execute("SELECT pg_advisory_lock(hashtext('loader'))")
    done = threading.Event()

    def load() -> None:
        backend.load([batch("tracks", [track("m1")])], [], "loader", 1)
        done.set()

    thread = threading.Thread(target=load)
    thread.start()
    try:
        assert not done.wait(0.5)
        assert db.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'web'"
        ).fetchone() == (0,)
    finally:
        db.execute("SELECT pg_advisory_unlock(hashtext('loader'))")
        thread.join(timeout=30)
    assert done.is_set()
    assert backend.position("loader") == 1


def test_backends_opened_at_once_create_the_meta_tables_once(url: str) -> None:
    backends: list[PostgresBackend] = []
    errors: list[BaseException] = []

    def open_() -> None:
        try:
            backends.append(PostgresBackend(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert errors == []
        assert [b.position("loader") for b in backends] == [0] * 4
    finally:
        for backend in backends:
            backend.close()


def test_an_unreachable_server_is_unavailable(
    pg_admin: psycopg.Connection[tuple[Any, ...]],
) -> None:
    with pytest.raises(WarehouseUnavailable, match="cannot connect to PostgreSQL"):
        PostgresBackend("postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")


def staged_tracks(engine: duckdb.DuckDBPyConnection, first: int, count: int) -> TableBatch:
    """`count` tracks with ids m<first>... staged in DuckDB, as the columnar planner leaves them."""
    query = (
        f"SELECT 'm' || i AS id, TIMESTAMPTZ '2026-11-28 10:00:00+00' AS received_at,"
        f" 'order_completed' AS event, i AS n FROM range({first}, {first + count}) r(i)"
    )
    columns = {**TRACK_COLUMNS, "n": C.INTEGER}
    return TableBatch("web", "tracks", columns, [], staged=StagedRows(engine, query, count))


def test_staged_rows_stream_into_copy_and_a_collision_mid_stream_redoes_the_load(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """200,000 staged rows are several MB of binary COPY: PostgreSQL refuses the first row (a
    known id) while more are still being sent; the load is redone through staging."""
    engine = duckdb.connect()
    backend.load([staged_tracks(engine, 0, 1)], [], "loader", 1)
    backend.load([staged_tracks(engine, 0, 200_000)], [], "loader", 2)
    count, low, high = db.execute("SELECT count(*), min(n), max(n) FROM web.tracks").fetchone()
    assert (count, low, high) == (200_000, 0, 199_999)
    assert backend.position("loader") == 2


def test_a_duckdb_failure_while_streaming_fails_the_load_and_writes_nothing(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    engine = duckdb.connect()
    backend.load([staged_tracks(engine, 0, 1)], [], "loader", 1)
    # DuckDB fails on a row's cast once it has written rows before it (the 100,000th).
    query = (
        "SELECT 'x' || i AS id, TIMESTAMPTZ '2026-11-28 10:00:00+00' AS received_at,"
        " 'order_completed' AS event, CASE WHEN i < 100000 THEN i ELSE ('x' || i)::BIGINT END AS n"
        " FROM range(200000) r(i)"
    )
    columns = {**TRACK_COLUMNS, "n": C.INTEGER}
    bad = TableBatch("web", "tracks", columns, [], staged=StagedRows(engine, query, 200_000))
    with pytest.raises(WarehouseError, match="DuckDB could not read the staged rows"):
        backend.load([bad], [], "loader", 2)
    assert db.execute("SELECT count(*) FROM web.tracks").fetchone() == (1,)
    assert backend.position("loader") == 1


@pytest.fixture(params=["compiled", "python"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Encode COPY rows with `_pgcopy.c`, and as an install without C extensions does."""
    if request.param == "python":
        monkeypatch.setenv(compiled.DISABLE_ENV, "1")
    elif compiled.pgcopy() is None:
        pytest.skip("sluice.warehouse._pgcopy is not built (no C compiler)")
    return str(request.param)


def test_the_python_encoder_writes_the_compiled_one_s_bytes() -> None:
    pgcopy = compiled.pgcopy()
    if pgcopy is None:
        pytest.skip("sluice.warehouse._pgcopy is not built (no C compiler)")
    engine = duckdb.connect()
    engine.execute("SET TimeZone = 'UTC'")
    query = (
        "SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE 'é' || i END AS t,"
        " CASE WHEN i % 5 = 0 THEN NULL ELSE i * 7919 - 500000 END AS n,"
        " CASE WHEN i % 3 = 0 THEN NULL ELSE i / 7 END AS x,"
        " CASE WHEN i % 11 = 0 THEN NULL ELSE i % 2 = 0 END AS ok,"
        " CASE WHEN i % 13 = 0 THEN NULL"
        " ELSE TIMESTAMPTZ '1969-12-31 23:00:00+00' + i * INTERVAL 1 HOUR END AS at"
        " FROM range(50000) r(i)"
    )
    types = [C.VARCHAR, C.INTEGER, C.FLOAT, C.BOOLEAN, C.TIMESTAMP]
    with_c = b"".join(binary_rows(engine, query, types))
    table = engine.sql(query).to_arrow_table().slice(100)  # arrays that do not start at 0
    arrays = [table.column(i).combine_chunks() for i in range(len(types))]
    sliced = python_copy_rows(table.num_rows, arrays, types)
    assert len(with_c) > 1_000_000
    assert with_c.endswith(sliced + b"\xff\xff")


def test_a_time_range_reads_only_the_pages_of_its_rows(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """The block-range index on received_at: ten loads an hour apart, 2,000 rows each; a query
    for the last hour reads its pages through the index, not the whole table."""
    for load in range(10):
        at = T0 + timedelta(hours=load)
        rows = [
            {**track(f"m{load}-{i:04}", note="x" * 200), "received_at": at} for i in range(2000)
        ]
        backend.load([batch("tracks", rows, note=C.VARCHAR)], [], "loader", load + 1)
    db.execute("VACUUM ANALYZE web.tracks")  # what autovacuum does after inserts: summarize
    db.execute("SET enable_seqscan = off")  # what the index reads, whatever the planner's costs
    plan = db.execute(
        "EXPLAIN (ANALYZE, COSTS OFF, FORMAT JSON) SELECT count(*) FROM web.tracks"
        " WHERE received_at >= %s",
        [T0 + timedelta(hours=9)],
    ).fetchone()
    assert plan is not None
    text = str(plan[0])
    assert "tracks_received_at_idx" in text and "Seq Scan" not in text
    heap = re.search(r"'Node Type': 'Bitmap Heap Scan'.*?'Lossy Heap Blocks': (\d+)", text)
    pages = db.execute("SELECT relpages FROM pg_class WHERE oid = 'web.tracks'::regclass")
    total = pages.fetchone()
    assert heap is not None and total is not None
    assert int(heap.group(1)) < total[0] / 3  # 155 of 667 here: whole 128-page ranges


@pytest.mark.usefixtures("encoder")
def test_binary_rows_end_when_their_reader_stops_early() -> None:
    engine = duckdb.connect()
    many = "SELECT i FROM range(1000000) r(i)"
    rows = binary_rows(engine, many, [C.INTEGER])
    assert next(rows).startswith(b"PGCOPY\n\xff\r\n\x00")
    next(rows)
    rows.close()  # the COPY failed: the cursor is closed, nothing is left running
    three = b"".join(binary_rows(engine, "SELECT i FROM range(3) r(i)", [C.INTEGER]))
    fields = b"".join(b"\x00\x01" + (8).to_bytes(4, "big") + i.to_bytes(8, "big") for i in range(3))
    assert three == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + fields + b"\xff\xff"
    missing = binary_rows(engine, "SELECT * FROM no_such_table", [C.INTEGER])
    with pytest.raises(WarehouseError, match="no_such_table"):
        b"".join(missing)


@pytest.mark.usefixtures("encoder")
def test_staged_values_of_every_type_arrive_as_they_were(
    backend: PostgresBackend, db: psycopg.Connection[tuple[Any, ...]]
) -> None:
    """Binary COPY: NULLs, negative and large integers, floats, booleans, timestamps on both
    sides of PostgreSQL's epoch (2000) and of 1970, empty and non-ASCII text, NUL (U+FFFD)."""
    engine = duckdb.connect()
    engine.execute("SET TimeZone = 'UTC'")
    values = [
        ("m1", "2026-11-28 10:00:00.123456+00", -5, 1.5, True, "Chloé € 5"),
        ("m2", "1999-12-31 23:59:59.999999+00", 9223372036854775807, -0.1, False, ""),
        ("m3", "1969-07-20 20:17:40+00", -9223372036854775808, 1e300, None, "a\x00b"),
        ("m4", None, None, None, None, None),
    ]
    engine.execute(
        "CREATE TABLE rows (id VARCHAR, received_at TIMESTAMPTZ, n BIGINT, x DOUBLE,"
        " ok BOOLEAN, note VARCHAR)"
    )
    engine.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?)", values)
    columns = {
        "id": C.VARCHAR, "received_at": C.TIMESTAMP, "n": C.INTEGER, "x": C.FLOAT,
        "ok": C.BOOLEAN, "note": C.VARCHAR,
    }  # fmt: skip
    staged = StagedRows(engine, "SELECT * FROM rows", len(values))
    backend.load([TableBatch("web", "things", columns, [], staged=staged)], [], "loader", 1)
    got = db.execute(
        "SELECT id, received_at, n, x, ok, note FROM web.things ORDER BY id"
    ).fetchall()
    expected = engine.execute("SELECT * FROM rows ORDER BY id").fetchall()
    assert [r[0] for r in got] == ["m1", "m2", "m3", "m4"]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine[:5] == theirs[:5]
        assert mine[5] == (theirs[5].replace("\x00", "\ufffd") if theirs[5] is not None else None)
