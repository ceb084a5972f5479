"""PostgreSQL warehouse backend alone: rows/s of `PostgresBackend.load`, without the planner.

    uv run python bench/warehouse_postgres.py [--rows 1000000] [--tables 20] [--per-load 50000]
        [--url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a fresh database, builds `--rows` Segment-shaped rows (15 columns: the standard ones plus
properties of every type) spread over `--tables` event tables, and loads them in loads of
`--per-load` rows, each load one transaction with its position. Row building is not timed.
Then it loads the same rows again (every id already present: the cost of deduplication), and
finally loads a users-like upsert table. Prints rows/s for each; drops the database at the end.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from sluice.warehouse.base import ColumnType, TableBatch
from sluice.warehouse.postgres import PostgresBackend

C = ColumnType
COLUMNS: dict[str, ColumnType] = {
    "id": C.VARCHAR,
    "received_at": C.TIMESTAMP,
    "sent_at": C.TIMESTAMP,
    "timestamp": C.TIMESTAMP,
    "original_timestamp": C.TIMESTAMP,
    "anonymous_id": C.VARCHAR,
    "user_id": C.VARCHAR,
    "event": C.VARCHAR,
    "event_text": C.VARCHAR,
    "context_library_name": C.VARCHAR,
    "context_page_url": C.VARCHAR,
    "order_id": C.VARCHAR,
    "total": C.FLOAT,
    "quantity": C.INTEGER,
    "coupon_applied": C.BOOLEAN,
}


def make_rows(n: int, table: str, start: int) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 28, tzinfo=UTC)
    rows = []
    for i in range(start, start + n):
        ts = base + timedelta(milliseconds=i)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "received_at": ts,
                "sent_at": ts,
                "timestamp": ts,
                "original_timestamp": ts,
                "anonymous_id": f"anon-{i % 50_000}",
                "user_id": f"user-{i % 20_000}",
                "event": table,
                "event_text": table.replace("_", " ").title(),
                "context_library_name": "analytics.js",
                "context_page_url": f"https://shop.example.com/p/{i % 997}",
                "order_id": f"o-{i}",
                "total": i * 0.25,
                "quantity": i % 7,
                "coupon_applied": i % 3 == 0,
            }
        )
    return rows


def run(backend: PostgresBackend, loads: list[list[TableBatch]], label: str, rows: int) -> None:
    start = time.perf_counter()
    for n, batches in enumerate(loads, 1):
        backend.load(batches, [], f"bench-{label}", n)
    elapsed = time.perf_counter() - start
    print(f"{label:>10}: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--per-load", type=int, default=50_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    db = f"sluice_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    url = psycopg.conninfo.make_conninfo(args.url, dbname=db)
    try:
        per_table = args.per_load // args.tables
        loads: list[list[TableBatch]] = []
        made = 0
        while made < args.rows:
            batches = [
                TableBatch("bench", f"event_{t:02d}", COLUMNS, make_rows(per_table, "e", made))
                for t in range(args.tables)
            ]
            made += per_table * args.tables
            loads.append(batches)
        print(f"{made:,} rows, {args.tables} tables x {len(COLUMNS)} columns, {len(loads)} loads")
        backend = PostgresBackend(url)
        run(backend, loads, "insert", made)
        run(backend, loads, "duplicates", made)
        users = [
            [TableBatch(b.schema, "users", COLUMNS, b.rows, upsert=True) for b in batches[:1]]
            for batches in loads
        ]
        run(backend, users, "upsert", sum(len(u[0].rows) for u in users))
        run(backend, users, "re-upsert", sum(len(u[0].rows) for u in users))
        backend.close()
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


if __name__ == "__main__":
    main()
