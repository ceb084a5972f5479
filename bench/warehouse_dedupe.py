"""DuckDB deduplication on id as tables grow: one load into a `tracks` holding many rows.

    uv run python bench/warehouse_dedupe.py [--existing 10000000] [--events 200000]

Loads `--events` of bench/warehouse.py's mixed events, adds `--existing` rows to `tracks` (and
their id digests, as loads would have left them), then times loading `--events` more. Every id
of the second load is new, so its cost is the insert plus finding that no id is there yet: with
id digests that reads 16 bytes per existing row; an anti-join on `id` read every id.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from sluice.config import Settings
from sluice.store.base import StoredEvent
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.loader import WarehouseLoader
from warehouse import GeneratedLog  # bench/warehouse.py


class Upto:
    """The generated log, cut after `end` events."""

    def __init__(self, log: GeneratedLog, end: int) -> None:
        self.log, self.end = log, end

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        return self.log.events[seq : min(seq + limit, self.end)]


def grow_tracks(path: Path, rows: int) -> None:
    """`rows` more tracks (only their ids), with their digests where the warehouse keeps them."""
    with duckdb.connect(str(path)) as db:
        (schema,) = db.execute(
            "SELECT schema_name FROM duckdb_tables() WHERE table_name = 'tracks'"
        ).fetchone() or ("",)
        db.execute(f"CREATE TEMP TABLE grown AS SELECT uuid()::VARCHAR AS id FROM range({rows})")
        db.execute(f'INSERT INTO "{schema}".tracks (id) SELECT id FROM grown')
        digests = f"ids:{schema}.tracks"
        if db.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [digests]
        ).fetchone() == (1,):
            db.execute(f'INSERT INTO _sluice."{digests}" SELECT md5_number(id) FROM grown')
        db.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--existing", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    log = GeneratedLog(2 * args.events, "bench")
    body = msgspec.json.encode({"id": "bench", "type": "duckdb"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"

        def load(end: int) -> float:
            cut: Any = Upto(log, end)  # reads like the store: all the loader asks of it
            loader = WarehouseLoader(Settings(), cut, body, lambda c: DuckDBBackend(path))
            return loader.load_once().seconds

        load(args.events)
        grow_tracks(path, args.existing)
        seconds = load(2 * args.events)
    print(
        f"{args.events:,} events into a warehouse whose tracks holds {args.existing:,} more rows:"
        f" {seconds:.1f} s ({args.events / seconds:,.0f} events/s)"
    )


if __name__ == "__main__":
    main()
