"""The store alone: append and read throughput of SqliteStore and PostgresStore.

    uv run python bench/store.py [--events 200000] [--group 500] [--nodes 2] [--methods]
        [--url postgresql://postgres@127.0.0.1:5432/postgres] [--read [--rounds 3]]

Appends `--events` 656-byte track events (unique messageIds, so deduplication does real work) in
groups of `--group`, one `append` per group as the collector's group commit does, then reads the
log back with `read_after` in chunks of 1000 as a consumer does. Backends: SQLite
(`synchronous=full`, a temporary file), PostgreSQL (a fresh database per run, dropped at the end)
with one appender, and PostgreSQL with `--nodes` appenders at once (threads with a store each,
as separate nodes would be). Building the events is not timed.

`--methods` also times bare bulk inserts into a copy of the events table (no dedupe, no store):
COPY binary, COPY text, executemany (pipeline mode) and INSERT ... SELECT unnest.

`--read` measures reading the SQLite log instead, the consumers' side: `--events` events (bench/
warehouse.py's generator, ~1 KB each, as the lake bench loads) read with `read_after` in pieces
of 50,000 (the warehouse loader's) and of 1,000, four pieces kept alive at a time as the loader
keeps a chunk, through the compiled reader (store/_sqlite_read.c) and through Python's sqlite3
(`SLUICE_NO_C_EXTENSIONS`), alternating, `--rounds` times; CPU seconds and events/s of each.
The limit: SQLite alone visiting the same rows and every payload byte (`sum(length(payload))`
over them), no Python object made.

`--node` measures the whole node instead: `sluice serve` with its default workers, on SQLite and
then on PostgreSQL, driven by wrk with bench/ingest.py's `/v1/batch` scenario (100 events per
request) and single `/v1/track` scenario, `--duration` seconds each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from sluice.store.base import AppendBatch, NewEvent, Store
from sluice.store.postgres import PostgresStore
from sluice.store.sqlite import SqliteStore


def make_groups(n: int, group: int) -> list[list[NewEvent]]:
    now = int(time.time() * 1000)
    groups = []
    for start in range(0, n, group):
        rows = []
        for _ in range(start, min(start + group, n)):
            message_id = str(uuid.uuid4())
            payload = msgspec.json.encode(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "messageId": message_id,
                    "userId": "user-1234",
                    "anonymousId": "0b9f3b8e-3c55-4c5f-9c43-0a2f0c1f7e01",
                    "properties": {"orderId": "o-12345", "total": 99.5, "currency": "EUR"},
                    "context": {
                        "library": {"name": "analytics.js", "version": "4.1.0"},
                        "page": {"url": "https://example.com/checkout/complete?step=3"},
                        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
                        "ip": "203.0.113.7",
                    },
                    "timestamp": "2026-11-28T10:00:00.000Z",
                    "sentAt": "2026-11-28T10:00:00.100Z",
                    "receivedAt": "2026-11-28T10:00:00.120Z",
                }
            )
            rows.append(NewEvent("web", message_id, "track", "Order Completed", now, payload))
        groups.append(rows)
    return groups


def append_all(stores: list[Store], groups: list[list[NewEvent]]) -> float:
    """Append every group, spread over the stores (one thread each); returns seconds."""
    shares = [groups[i :: len(stores)] for i in range(len(stores))]

    def run(store: Store, share: list[list[NewEvent]]) -> None:
        for rows in share:
            store.append(AppendBatch(events=rows, counters={("web", "received"): len(rows)}))

    threads = [threading.Thread(target=run, args=pair) for pair in zip(stores, shares, strict=True)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def read_all(store: Store) -> tuple[int, float]:
    started = time.perf_counter()
    cursor, count = 0, 0
    while events := store.read_after(cursor, 1000):
        count += len(events)
        cursor = events[-1].seq
    return count, time.perf_counter() - started


def read_pieces(store: SqliteStore, piece: int) -> tuple[int, float, float]:
    """(events, seconds, CPU seconds) of reading the whole log in pieces of `piece`, four
    pieces alive at a time (a loader's chunk)."""
    cpu_before = os.times()
    started = time.perf_counter()
    cursor, count, alive = 0, 0, []
    while events := store.read_after(cursor, piece):
        count += len(events)
        cursor = events[-1].seq
        alive = [*alive[-3:], events]
    after = os.times()
    cpu = after.user + after.system - cpu_before.user - cpu_before.system
    return count, time.perf_counter() - started, cpu


def bench_read(n: int, rounds: int) -> None:
    """The SQLite log read in C and in Python, side by side (`--read`)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from sluice.native import DISABLE_ENV
    from warehouse import GeneratedLog

    with tempfile.TemporaryDirectory() as tmp:
        log = GeneratedLog(n, "web")
        size = sum(len(e.payload) for e in log.events)
        store = log.into_sqlite(Path(tmp) / "log.db")
        try:
            del log
            print(f"reading {n:,} events ({size / n:,.0f} bytes each) from the SQLite log")
            for piece in (50_000, 1000):
                figures: dict[str, list[tuple[float, float]]] = {"C": [], "Python": []}
                for _ in range(rounds):
                    for label in figures:
                        os.environ[DISABLE_ENV] = "1" if label == "Python" else "0"
                        count, seconds, cpu = read_pieces(store, piece)
                        assert count == n, (count, n)
                        figures[label].append((seconds, cpu))
                os.environ.pop(DISABLE_ENV)
                line = []
                for label, runs in figures.items():
                    seconds, cpu = min(runs)
                    line.append(f"{label} {n / seconds:9,.0f} events/s ({cpu:.2f} s CPU)")
                c_cpu, py_cpu = (
                    min(c for _, c in figures["C"]),
                    min(c for _, c in figures["Python"]),
                )
                print(
                    f"  pieces of {piece:6,}: "
                    + ",  ".join(line)
                    + f",  C/Python CPU {c_cpu / py_cpu:.0%}"
                )
            started = time.perf_counter()
            with store._lock:
                store._db.execute(
                    "SELECT sum(length(payload)), count(*) FROM events WHERE seq > 0"
                ).fetchone()
            seconds = time.perf_counter() - started
            limit = f"{n / seconds:9,.0f} events/s"
            print(f"  the limit, SQLite alone over every row and payload: {limit}")
        finally:
            store.close()


def fresh_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"sluice_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    return url, drop


def run_backend(label: str, open_: Callable[[], Store], nodes: int, n: int, group: int) -> float:
    groups = make_groups(n, group)
    stores = [open_() for _ in range(nodes)]
    try:
        seconds = append_all(stores, groups)
        count, read_s = read_all(stores[0])
        assert count == n, (count, n)
    finally:
        for store in stores:
            store.close()
    rate = n / seconds
    print(f"{label:28s} append {rate:9,.0f} events/s   read {count / read_s:9,.0f} events/s")
    return rate


def bench_methods(url: str, n: int, group: int) -> None:
    """Bare bulk inserts into an unpartitioned copy of the events table, a transaction per group."""
    groups = make_groups(n, group)
    columns = "source_id, message_id, type, event, received_at, payload"

    def copy_binary(cur: psycopg.Cursor[Any], rows: list[NewEvent]) -> None:
        with cur.copy(f"COPY scratch ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "text", "text", "int8", "bytea"])
            for row in rows:
                copy.write_row(row)

    def copy_text(cur: psycopg.Cursor[Any], rows: list[NewEvent]) -> None:
        with cur.copy(f"COPY scratch ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def executemany(cur: psycopg.Cursor[Any], rows: list[NewEvent]) -> None:
        cur.executemany(f"INSERT INTO scratch ({columns}) VALUES (%s, %s, %s, %s, %s, %s)", rows)

    def unnest(cur: psycopg.Cursor[Any], rows: list[NewEvent]) -> None:
        cur.execute(
            f"INSERT INTO scratch ({columns}) SELECT * FROM unnest(%b::text[], %b::text[],"
            " %b::text[], %b::text[], %b::bigint[], %b::bytea[])",
            [list(column) for column in zip(*rows, strict=True)],
        )

    methods: dict[str, Callable[[psycopg.Cursor[Any], list[NewEvent]], None]] = {
        "COPY binary": copy_binary,
        "COPY text": copy_text,
        "executemany (pipeline)": executemany,
        "INSERT ... SELECT unnest": unnest,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for label, insert in methods.items():
            conn.execute("DROP TABLE IF EXISTS scratch")
            conn.execute(
                "CREATE TABLE scratch (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                " source_id text NOT NULL, message_id text NOT NULL, type text NOT NULL,"
                " event text, received_at bigint NOT NULL, payload bytea NOT NULL)"
            )
            started = time.perf_counter()
            for rows in groups:
                with conn.transaction(), conn.cursor(binary=True) as cur:
                    insert(cur, rows)
            rate = n / (time.perf_counter() - started)
            print(f"  insert method {label:24s} {rate:9,.0f} rows/s")


def bench_node(admin_url: str, seconds: int) -> None:
    """Ingest through HTTP on each backend, with bench/ingest.py's server and wrk scenarios."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest  # bench/ingest.py

    template = ingest.EVENT_TEMPLATE.replace("%", "%%").replace("%%s", "%s")
    scenarios = {
        "batch100": (ingest.LUA_BATCH % {"template": template, "size": 100}, 100),
        "track": (ingest.LUA_SINGLE % {"template": template, "path": "/v1/track"}, 1),
    }

    class PostgresServer(ingest.Server):  # type: ignore[misc]
        def __init__(self, url: str) -> None:
            super().__init__(None)
            self.url = url

        def stored_events(self) -> int:
            with psycopg.connect(self.url) as conn:
                row = conn.execute("SELECT count(*) FROM events").fetchone()
                return int(row[0]) if row else 0

    rates: dict[str, dict[str, float]] = {}
    for backend in ("sqlite", "postgres"):
        drop: Callable[[], None] | None = None
        if backend == "postgres":
            url, drop = fresh_database(admin_url)
            os.environ["SLUICE_DATABASE_URL"] = url  # read by the server the harness starts
            server = PostgresServer(url)
        else:
            server = ingest.Server(None)
        server.start()
        try:
            for name, (script, per_request) in scenarios.items():
                before = server.stored_events()
                r = ingest.run_wrk(f"http://127.0.0.1:{server.port}/", script, seconds, 64, 2)
                time.sleep(0.5)
                stored = server.stored_events() - before
                acked = (r["requests"] - r["non2xx"]) * per_request
                rates.setdefault(name, {})[backend] = r["rps"] * per_request
                print(
                    f"node {backend:8s} {name:9s} {r['rps'] * per_request:9,.0f} events/s"
                    f"   p99 {r['p99_ms']:7.1f} ms   acknowledged {acked:,}, stored {stored:,}"
                )
        finally:
            server.stop()
            os.environ.pop("SLUICE_DATABASE_URL", None)
            if drop is not None:
                drop()
    for name, by_backend in rates.items():
        ratio = by_backend["postgres"] / by_backend["sqlite"]
        print(f"node {name}: postgres / sqlite = {ratio:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--group", type=int, default=500)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--methods", action="store_true")
    parser.add_argument("--node", action="store_true", help="the whole node over HTTP instead")
    parser.add_argument("--read", action="store_true", help="reading the SQLite log, C and Python")
    parser.add_argument("--rounds", type=int, default=3, help="--read: rounds of each, best kept")
    parser.add_argument("--duration", type=int, default=10, help="seconds per --node scenario")
    args = parser.parse_args()
    if args.node:
        bench_node(args.url, args.duration)
        return
    if args.read:
        bench_read(args.events, args.rounds)
        return
    n, group = args.events, args.group
    print(f"{n:,} events of ~650 bytes in groups of {group}")

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_rate = run_backend(
            "sqlite (synchronous=full)", lambda: SqliteStore(Path(tmp) / "log.db"), 1, n, group
        )
    url, drop = fresh_database(args.url)
    try:
        pg_rate = run_backend("postgres, 1 appender", lambda: PostgresStore(url), 1, n, group)
    finally:
        drop()
    print(f"postgres / sqlite: {pg_rate / sqlite_rate:.0%}")
    if args.nodes > 1:
        url, drop = fresh_database(args.url)
        try:
            label = f"postgres, {args.nodes} nodes at once"
            run_backend(label, lambda: PostgresStore(url), args.nodes, n, group)
        finally:
            drop()
    if args.methods:
        url, drop = fresh_database(args.url)
        try:
            bench_methods(url, n, group)
        finally:
            drop()


if __name__ == "__main__":
    main()
