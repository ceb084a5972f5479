"""What DuckDB alone takes to write a warehouse load's rows, in each way a loader could.

    uv run python bench/warehouse_append.py [--events 1000000]

Loads `--events` of bench/warehouse.py's mixed events once through Sluice (not timed), copies
the rows it made into memory, then times DuckDB writing those same rows into a fresh file with
no Segment logic at all: as bench/warehouse.py's ceiling does (tables created in the writing
transaction, with DuckDB's default threads and with one), and appended to tables that already
exist (what a loader does) as five chunks in five transactions or in one, checkpointed at the
end or at each commit. Prints seconds, CPU seconds and events/s for each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from sluice.warehouse.duckdb import DuckDBBackend
from warehouse import GeneratedLog, _loaded_tables, run  # bench/warehouse.py

CHUNKS = 5


def write(memory: duckdb.DuckDBPyConnection, names: list[str], folder: Path, how: str) -> None:
    """Write every table's rows into `folder`/w.duckdb the way `how` says (see `WAYS`)."""
    memory.execute(f"ATTACH '{folder / 'w.duckdb'}' AS fresh")
    try:
        if how == "create":
            memory.execute("BEGIN")
            for name in names:
                memory.execute(f'CREATE TABLE fresh."{name}" AS SELECT * FROM memory."{name}"')
            memory.execute("COMMIT")
            return
        transactions, threshold = how.split("/")
        memory.execute(f"SET checkpoint_threshold = '{threshold}'")
        for name in names:
            memory.execute(f'CREATE TABLE fresh."{name}" AS FROM memory."{name}" LIMIT 0')
        memory.execute("CHECKPOINT fresh")
        sizes = {n: memory.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}
        per_transaction = CHUNKS // int(transactions)
        for chunk in range(CHUNKS):
            if chunk % per_transaction == 0:
                memory.execute("BEGIN")
            for name in names:
                low, high = (sizes[name] * c // CHUNKS for c in (chunk, chunk + 1))
                memory.execute(
                    f'INSERT INTO fresh."{name}" SELECT * FROM memory."{name}"'
                    f" WHERE rowid >= {low} AND rowid < {high}"
                )
            if (chunk + 1) % per_transaction == 0:
                memory.execute("COMMIT")
        memory.execute("CHECKPOINT fresh")
    finally:
        memory.execute("DETACH fresh")
        memory.execute("RESET checkpoint_threshold")


WAYS: dict[str, tuple[str, str]] = {  # label: (how, a setting for the run)
    "tables created in the transaction (the ceiling)": ("create", ""),
    "the same, SET threads = 1": ("create", "SET threads = 1"),
    "appended: 5 transactions, checkpoint at the end (Sluice)": ("5/1GB", ""),
    "appended: 1 transaction, checkpoint at the end": ("1/1GB", ""),
    "appended: 1 transaction, checkpointed at its commit": ("1/16MB", ""),
    "appended: 5 transactions, each checkpointed at commit": ("5/16MB", ""),
}


def timed(work: Callable[[], None]) -> tuple[float, float]:
    before, started = os.times(), time.perf_counter()
    work()
    after = os.times()
    return time.perf_counter() - started, sum(after[:2]) - sum(before[:2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    log = GeneratedLog(args.events, "bench_append")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        backend = DuckDBBackend(tmp / "loaded.duckdb")
        try:
            run("Sluice's load (not what is timed below)", log, 200_000, backend)
        finally:
            backend.close()
        memory, names = _loaded_tables(tmp / "loaded.duckdb")
        rows = sum(memory.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names)
        print(f"\nDuckDB alone writing those {rows:,} rows ({args.events:,} events):")
        for number, (label, (how, setting)) in enumerate(WAYS.items()):
            if setting:
                memory.execute(setting)
            folder = tmp / f"way{number}"
            folder.mkdir()
            wall, cpu = timed(lambda: write(memory, names, folder, how))  # noqa: B023
            memory.execute("RESET threads")
            print(
                f"  {label:<58} {wall:5.1f} s, {cpu:5.1f} s of CPU,"
                f" {args.events / wall:>9,.0f} events/s"
            )


if __name__ == "__main__":
    main()
