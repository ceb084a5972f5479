"""Event tables per source: what many distinct event names cost a DuckDB warehouse.

    uv run python bench/event_tables.py [--names 5000] [--events 3] [--properties 4]
        [--caps 4000,1000,1000000] [--all-digests] [--block-size 16384]

A source that puts ids into event names (`Ordered Product 15`) makes a table per name. This
generates `--names` distinct names with `--events` tracks each (`--properties` properties per
track, a small analytics-python context), interleaved as a stream would bring them, and loads
them through `WarehouseLoader` into a fresh DuckDB file once per cap (`max_event_tables`; a
large cap is no cap). Per cap it prints the event tables made, every table in the file (the
source's schema and Sluice's own, the id digests among them), the file's size after the load's
checkpoint, the load's time, the names capped, and the time of a second load bringing one more
event per name (what a later load costs with that many tables).

`--all-digests` gives every table its id digests, as loads did before small tables went
without; `--block-size` creates the file beforehand with that DuckDB block size (DuckDB keeps a
file's block size; its default is 256 KiB, and every table takes at least one block).
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
import msgspec

import sluice.warehouse.duckdb as duckdb_backend
from sluice.config import Settings
from sluice.store.base import StoredEvent
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.loader import LoadReport, WarehouseLoader

SOURCE = "web"
_encode = msgspec.json.Encoder().encode


class NamesLog:
    """A log of tracks over many event names, in memory (generated before anything is timed)."""

    def __init__(self, names: int, rounds: int, properties: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.events: list[StoredEvent] = []
        for _ in range(rounds):
            self.round(names, properties)

    def round(self, names: int, properties: int) -> None:
        """One more track of each name."""
        for name in range(names):
            self.add(name, properties)

    def add(self, name: int, properties: int) -> None:
        rng = self.rng
        n = len(self.events) + 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_700_000_000 + n))
        values: list[Any] = [f"sku-{n}", round(rng.uniform(1, 500), 2), n % 5, n % 2 == 0]
        msg = {
            "type": "track",
            "event": f"Ordered Product {name}",
            "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
            "userId": f"user-{n % 1000}",
            "receivedAt": stamp,
            "timestamp": stamp,
            "context": {"library": {"name": "analytics-python", "version": "2.3.0"}},
            "properties": {f"p{i}": values[i % len(values)] for i in range(properties)},
        }
        event = StoredEvent(n, SOURCE, msg["messageId"], "track", msg["event"], 0, _encode(msg))
        self.events.append(event)

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.events[seq : seq + limit]  # seq n sits at index n - 1


class Upto:
    """The log, cut after `end` events (what the first load finds)."""

    def __init__(self, log: NamesLog, end: int) -> None:
        self.log, self.end = log, end

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.log.events[seq : min(seq + limit, self.end)]


def load(log: NamesLog | Upto, path: Path, cap: int) -> LoadReport:
    body = _encode({"id": "bench", "type": "duckdb"})
    settings = Settings(warehouse_max_event_tables=cap)
    factory: Any = lambda c: DuckDBBackend(path)  # noqa: E731
    return WarehouseLoader(settings, log, body, backend_factory=factory).load_once()  # type: ignore[arg-type]


def describe(path: Path) -> dict[str, Any]:
    """Tables by kind, DuckDB's block size and blocks, and the file's size."""
    with duckdb.connect(str(path), read_only=True) as db:
        kinds = dict(
            db.execute(
                "SELECT CASE WHEN schema_name = ? THEN 'events'"
                " WHEN table_name LIKE 'ids:%' THEN 'digests' ELSE 'meta' END, count(*)"
                " FROM duckdb_tables() WHERE NOT internal GROUP BY 1",
                [SOURCE],
            ).fetchall()
        )
        ((block_size, blocks),) = db.execute(
            "SELECT block_size, total_blocks FROM pragma_database_size()"
            " WHERE database_name = current_database()"
        ).fetchall()
        ((views,),) = db.execute(
            "SELECT count(*) FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    wal = Path(f"{path}.wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {**kinds, "views": views, "block_size": block_size, "blocks": blocks, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=5000)
    parser.add_argument("--events", type=int, default=3, help="tracks per name")
    parser.add_argument("--properties", type=int, default=4, help="properties per track")
    parser.add_argument("--caps", default="4000,1000,1000000", help="max_event_tables values")
    parser.add_argument("--all-digests", action="store_true", help="id digests for every table")
    parser.add_argument("--block-size", type=int, help="DuckDB block size of the fresh file")
    args = parser.parse_args()
    # The loader logs each name it caps (20 a load): not what this prints.
    logging.getLogger("sluice.warehouse.loader").setLevel(logging.ERROR)
    if args.all_digests:
        duckdb_backend.DIGESTS_FROM_ROWS = 0
    log = NamesLog(args.names, args.events, args.properties)
    first_events = log.events[:]
    log.round(args.names, args.properties)  # what the second load brings
    print(
        f"{args.names:,} event names x {args.events} tracks ({len(first_events):,} events,"
        f" {args.properties} properties each) into a fresh DuckDB file per cap"
        + (", id digests for every table" if args.all_digests else "")
    )
    print(
        f"{'max_event_tables':>16} {'event tables':>12} {'tables in file':>14}"
        f" {'of them digests':>15} {'file':>10} {'load':>8} {'capped names':>12}"
        f" {'next load':>10}"
    )
    for cap in (int(c) for c in args.caps.split(",")):
        with tempfile.TemporaryDirectory(prefix="sluice-event-tables-") as tmp:
            path = Path(tmp) / "warehouse.duckdb"
            if args.block_size:
                duckdb.connect(str(path), config={"default_block_size": args.block_size}).close()
            first = load(Upto(log, len(first_events)), path, cap)
            found = describe(path)
            again = load(log, path, cap)
            in_file = found.get("events", 0) + found.get("digests", 0) + found.get("meta", 0)
            print(
                f"{cap:>16,} {found.get('events', 0) - 1:>12,} {in_file:>14,}"
                f" {found.get('digests', 0):>15,} {found['bytes'] / 2**20:>6,.0f} MiB"
                f" {first.seconds:>6.1f} s {len(first.capped):>12,} {again.seconds:>8.1f} s"
            )
    print(
        f"(event tables: the source's schema but tracks; DuckDB block size"
        f" {found['block_size'] // 1024} KiB, {found['blocks']:,} blocks in the last file;"
        f" {found['views']} views; next load: {args.names:,} more events, one per name)"
    )


if __name__ == "__main__":
    main()
