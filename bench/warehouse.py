"""Warehouse loading benchmark: events/s and rows/s from the log into Segment-shaped tables.

    uv run python bench/warehouse.py [--events 1000000] [--chunk 200000]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--no-ceiling] [--sqlite]

Loads `--events` mixed events (80% tracks over 20 event names with nested properties and arrays,
10% pages, 7% identifies, 3% groups; analytics.js-like context) through `WarehouseLoader`, the
code path the worker runs: plan each chunk (the compiled reader and DuckDB, or event by event
when the fast path cannot), then one transaction per chunk. The log is generated in memory first
(not timed), so the figures cover planning and loading only; for DuckDB they include the
checkpoint at the end of the load. Prints the wall time spent planning (reading the log, sorting
events into groups in Python, reading and typing them on two threads) and the backend's
(inserts, commits; it runs in another thread, overlapping the planning of the next chunk), and
how many pieces were planned event by event (none for these events).

Then the engines' ceiling for the same load, with no Segment logic at all: DuckDB parsing every
event's JSON once, DuckDB writing the rows the load made into a fresh file in one transaction,
and PostgreSQL COPYing them (binary COPY, as Sluice sends them) into fresh tables keyed on `id`
(what deduplication needs). No loader can beat events / write time on this machine; the
figure in % says how close Sluice is.

`--sqlite` then loads the same log from a SQLite store (the worker's own), as a node on the
embedded defaults does, into fresh DuckDB files: each chunk handed to the planner column by
column (store/columns.py, the default) and as rows read in C, alternating, three of each.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.config import Settings
from sluice.store.base import StoredEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse.base import META_SCHEMA, WarehouseBackend
from sluice.warehouse.columnar import Chunk, ColumnarPlanner
from sluice.warehouse.duckdb import DuckDBBackend, column_type_of
from sluice.warehouse.loader import DEFAULT_CHUNK_EVENTS, WarehouseLoader
from sluice.warehouse.pgcopy import binary_rows
from sluice.warehouse.planner import Planner
from sluice.warehouse.postgres import PostgresBackend
from sluice.warehouse.postgres_catalog import PG_TYPES

EVENT_NAMES = [
    "Order Completed", "Product Viewed", "Product Added", "Product Removed", "Cart Viewed",
    "Checkout Started", "Checkout Step Viewed", "Payment Info Entered", "Coupon Applied",
    "Products Searched", "Product List Viewed", "Signed Up", "Signed In", "Signed Out",
    "Video Playback Started", "Video Playback Paused", "Video Content Playing", "Email Opened",
    "Push Notification Tapped", "Application Opened",
]  # fmt: skip
_encode = msgspec.json.Encoder().encode


def _context(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "library": {"name": "analytics.js", "version": "next-1.70.0"},
        "page": {
            "path": f"/p/{n % 500}",
            "referrer": "https://www.google.com/",
            "title": "Shop",
            "url": f"https://shop.example.com/p/{n % 500}",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "locale": rng.choice(["en-US", "fr-FR", "de-DE"]),
        "ip": f"10.0.{n % 256}.{(n // 256) % 256}",
        "campaign": {"source": "newsletter", "medium": "email", "name": "winter"},
    }


def make_event(n: int, rng: random.Random) -> tuple[str, str | None, dict[str, Any]]:
    roll = rng.random()
    second = 1_700_000_000 + n // 100
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)) + f".{n % 1000:03d}Z"
    msg: dict[str, Any] = {
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "anonymousId": f"anon-{n % 50_000}",
        "userId": f"user-{n % 20_000}",
        "receivedAt": stamp,
        "sentAt": stamp,
        "timestamp": stamp,
        "originalTimestamp": stamp,
        "context": _context(rng, n),
        "integrations": {},
    }
    if roll < 0.80:
        index = n % len(EVENT_NAMES)
        msg["type"], msg["event"] = "track", EVENT_NAMES[index]
        msg["properties"] = {
            "order_id": f"o-{n}",
            "total": round(rng.uniform(5, 500), 2),
            "revenue": round(rng.uniform(5, 500), 2),
            "quantity": rng.randint(1, 5),
            "currency": "USD",
            "coupon": None if n % 3 else "WINTER",
            f"variant_{index}": rng.choice(["a", "b"]),
            "product": {"id": f"p-{n % 999}", "category": "Games", "price": 19.99},
            "products": [{"product_id": f"p-{n % 999}", "price": 19.99, "quantity": 1}],
            "first_purchase": n % 7 == 0,
        }
    elif roll < 0.90:
        msg["type"], msg["name"] = "page", "Home"
        msg["properties"] = {"name": "Home", "path": "/", "url": "https://shop.example.com/"}
    elif roll < 0.97:
        msg["type"] = "identify"
        msg["traits"] = {
            "email": f"user-{n % 20_000}@example.com",
            "name": "Ada Lovelace",
            "plan": rng.choice(["free", "pro"]),
            "logins": rng.randint(1, 90),
            "address": {"city": "Paris", "country": "FR"},
            "createdAt": "2023-05-01T10:00:00Z",
        }
    else:
        msg["type"], msg["groupId"] = "group", f"g-{n % 500}"
        msg["traits"] = {"name": "Initech", "employees": rng.randint(5, 500), "industry": "IT"}
    return msg["type"], msg.get("event"), msg


class GeneratedLog:
    """A store holding a generated log in memory (generated before anything is timed)."""

    def __init__(self, total: int, source_id: str, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.events = []
        for n in range(1, total + 1):
            kind, name, msg = make_event(n, rng)
            payload = _encode(msg)
            self.events.append(StoredEvent(n, source_id, msg["messageId"], kind, name, 0, payload))

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.events[seq : seq + limit]  # seq n sits at index n - 1

    def into_sqlite(self, path: Path) -> SqliteStore:
        """A SQLite store (the worker's own) at `path` holding this log, seqs as they are."""
        store = SqliteStore(path)
        with store._lock:  # one transaction, not the collector's appends: not what is timed
            store._db.execute("BEGIN")
            store._db.executemany(
                "INSERT INTO events (seq, source_id, message_id, type, event, received_at,"
                " payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                self.events,
            )
            store._db.execute("COMMIT")
        return store


def run(
    label: str, log: GeneratedLog | SqliteStore, chunk: int, backend: WarehouseBackend
) -> float:
    """Load the log through `WarehouseLoader`, timing planning and the backend's `load`.

    The methods are timed where they are defined (the loader gets the backend itself: a DuckDB
    backend inserts from the planner's stage tables only when they are its own).
    """
    spent = {"plan": 0.0, "load": 0.0}
    exact = [0]
    patched = [(Chunk, "add", "plan"), (Chunk, "plan", "plan"), (Planner, "plan", "plan")]
    patched.append((type(backend), "load", "load"))
    originals = [getattr(owner, name) for owner, name, _ in patched]

    def timed_call(fn: Any, part: str, is_exact: bool) -> Any:
        def call(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                spent[part] += time.perf_counter() - started
                exact[0] += is_exact

        return call

    for (owner, name, part), fn in zip(patched, originals, strict=True):
        setattr(owner, name, timed_call(fn, part, owner is Planner))
    try:
        # A fresh loader id: a shared PostgreSQL keeps the positions of earlier runs.
        body = _encode({"id": f"bench_{time.time_ns()}", "type": "duckdb"})
        factory: Any = lambda c: backend  # noqa: E731
        loader = WarehouseLoader(Settings(), log, body, backend_factory=factory, chunk_events=chunk)  # type: ignore[arg-type]
        cpu_before = os.times()
        report = loader.load_once()
        cpu_after = os.times()
    finally:
        for (owner, name, _), fn in zip(patched, originals, strict=True):
            setattr(owner, name, fn)
    total = report.seconds
    events, rows = report.events, report.total_rows
    print(
        f"\n{label}: {events:,} events -> {rows:,} rows in {len(report.rows)} tables,"
        f" {report.discards} discards, chunks of {chunk:,}"
        + (f", {exact[0]} pieces planned event by event" if exact[0] else "")
    )
    cpu, load_s = spent["plan"], spent["load"]
    print(
        f"  end to end  {events / total:>9,.0f} events/s {rows / total:>9,.0f} rows/s"
        f" ({total:.1f} s)"
    )
    used = sum(cpu_after[:2]) - sum(cpu_before[:2])
    print(
        f"  CPU         {used:>9.1f} s (this process, all threads: {used / total:.2f} cores busy"
        f" of {os.cpu_count()})"
    )
    print(f"  planning    {cpu:>9.1f} s (reading, planning; overlaps the backend)")
    print(f"  backend     {rows / load_s:>9,.0f} rows/s ({load_s:.1f} s, overlaps planning)")
    return events / total


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _timed_cpu(work: Any) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of `work`."""
    before = os.times()
    wall = _timed(work)
    after = os.times()
    return wall, sum(after[:2]) - sum(before[:2])


def _loaded_tables(warehouse: Path) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """The rows a DuckDB load made, copied into an in-memory DuckDB (not timed)."""
    memory = duckdb.connect()
    memory.execute("SET TimeZone = 'UTC'")
    memory.execute(f"ATTACH '{warehouse}' AS loaded (READ_ONLY)")
    names: list[str] = []
    for schema, table in memory.execute(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_catalog = 'loaded' AND table_schema <> ?",
        [META_SCHEMA],
    ).fetchall():
        names.append(f"t{len(names)}_{table}"[:60])
        memory.execute(f'CREATE TABLE "{names[-1]}" AS SELECT * FROM loaded."{schema}"."{table}"')
    memory.execute("DETACH loaded")
    return memory, names


def parse_seconds(log: GeneratedLog) -> float:
    """DuckDB parsing every payload once (both cores), the least any reading of them costs."""
    db = duckdb.connect()
    payload = pa.array([e.payload for e in log.events], pa.binary()).cast(pa.string())
    payloads = pa.table({"payload": payload})
    db.register("events", payloads)
    return _timed(lambda: db.execute("SELECT count(*) FROM events WHERE json_valid(payload)"))


def duckdb_write_seconds(
    memory: duckdb.DuckDBPyConnection, names: list[str], tmp: Path
) -> tuple[float, float]:
    """Writing the load's rows into a fresh DuckDB file, one transaction, no checks: wall and
    CPU seconds."""
    memory.execute(f"ATTACH '{tmp / 'ceiling.duckdb'}' AS fresh")

    def write() -> None:
        memory.execute("BEGIN")
        for name in names:
            memory.execute(f'CREATE TABLE fresh."{name}" AS SELECT * FROM memory."{name}"')
        memory.execute("COMMIT")

    try:
        return _timed_cpu(write)
    finally:
        memory.execute("DETACH fresh")


def postgres_copy_seconds(memory: duckdb.DuckDBPyConnection, names: list[str], url: str) -> float:
    """COPYing the load's rows (binary COPY, encoded beforehand) into fresh PostgreSQL tables
    whose only index is the primary key on id, one transaction."""
    blobs = []
    for name in names:
        columns = memory.execute(f'DESCRIBE "{name}"').fetchall()
        types = [column_type_of(t) for _, t, *_ in columns]
        defs = ", ".join(
            f'"{c}" {PG_TYPES[column_type_of(t)]}'
            + (' COLLATE "C" PRIMARY KEY' if c == "id" else "")
            for c, t, *_ in columns
        )
        blobs.append((name, defs, b"".join(binary_rows(memory, f'SELECT * FROM "{name}"', types))))
    schema = f"sluice_ceiling_{time.time_ns()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:

            def copy() -> None:
                with conn.transaction():
                    for name, defs, blob in blobs:
                        conn.execute(f'CREATE TABLE "{schema}"."{name}" ({defs})')
                        copy_sql = f'COPY "{schema}"."{name}" FROM STDIN (FORMAT binary)'
                        with conn.cursor().copy(copy_sql) as copy:
                            for start in range(0, len(blob), 1 << 20):
                                copy.write(blob[start : start + (1 << 20)])

            return _timed(copy)
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def print_ceiling(
    label: str, events: int, parse_s: float, write_s: float, rate: float, cpu_s: float | None = None
) -> None:
    alone, both = events / write_s, events / (parse_s + write_s)
    cpu = f", {cpu_s:.1f} s of CPU in this process" if cpu_s is not None else ""
    print(
        f"  ceiling     {alone:>9,.0f} events/s: {label} alone takes {write_s:.1f} s{cpu}"
        f" ({both:,.0f} events/s with parsing every event once, {parse_s:.1f} s);"
        f" Sluice reached {rate / alone:.0%} of it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_EVENTS)
    parser.add_argument("--postgres", metavar="URL", help="also load into this PostgreSQL")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the engines' ceiling")
    parser.add_argument(
        "--sqlite", action="store_true", help="also load from a SQLite log: columns against rows"
    )
    args = parser.parse_args()
    calibration = min(timeit.repeat("sum(range(10000))", number=200, repeat=5)) / 200 * 1e6
    print(f"this machine: sum(range(10000)) takes {calibration:.0f} µs (compare machines with it)")
    started = time.perf_counter()
    source_id = f"bench_{int(time.time())}"  # a fresh schema in a shared PostgreSQL
    log = GeneratedLog(args.events, source_id)
    size = sum(len(e.payload) for e in log.events) / max(len(log.events), 1)
    print(
        f"generated {args.events:,} events ({size:.0f} bytes each) in"
        f" {time.perf_counter() - started:.0f} s; schema {source_id}"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        backend = DuckDBBackend(tmp / "bench.duckdb")
        try:
            duck_rate = run("DuckDB", log, args.chunk, backend)
        finally:
            backend.close()
        if not args.no_ceiling:
            parse_s = parse_seconds(log)
            memory, names = _loaded_tables(tmp / "bench.duckdb")
            write_s, write_cpu = duckdb_write_seconds(memory, names, tmp)
            print_ceiling(
                "writing its rows", len(log.events), parse_s, write_s, duck_rate, write_cpu
            )
        if args.postgres:
            pg = PostgresBackend(args.postgres)
            try:
                pg_rate = run("PostgreSQL", log, args.chunk, pg)
            finally:
                pg.close()
            if not args.no_ceiling:
                copy_s = postgres_copy_seconds(memory, names, args.postgres)
                print_ceiling("COPYing its rows", len(log.events), parse_s, copy_s, pg_rate)
        if args.sqlite:
            load_from_sqlite(log, tmp, args.chunk)


def load_from_sqlite(log: GeneratedLog, tmp: Path, chunk: int) -> None:
    """The log loaded into DuckDB from a SQLite store: column by column against rows,
    alternating (the machine is noisy: the pairs are what compares)."""
    store = log.into_sqlite(tmp / "log.db")
    rates: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(6):
            as_columns = i % 2 == 0
            ColumnarPlanner.takes_columns = as_columns
            label = "column by column" if as_columns else "as rows (read in C)"
            backend = DuckDBBackend(tmp / f"sqlite-{i}.duckdb")
            try:
                rates[as_columns].append(
                    run(f"DuckDB from a SQLite log, {label}", store, chunk, backend)
                )
            finally:
                backend.close()
    finally:
        ColumnarPlanner.takes_columns = True
        store.close()
    shown = {k: " / ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
    print(
        f"\nfrom a SQLite log, events/s: column by column {shown[True]};"
        f" as rows {shown[False]} (pairs in that order)"
    )


if __name__ == "__main__":
    main()
