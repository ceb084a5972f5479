"""Deletion targets benchmark: how long deleting one user takes in a loaded warehouse and lake.

    uv run python bench/erasure.py [--events 1000000] [--dir /tmp/erasure-bench]
                                   [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Generates bench/warehouse.py's log (userIds `user-0` .. `user-19999`, so one user has
events / 20,000 events), loads it into a DuckDB file and a local lake (compaction off, so the
lake has every load's files) with `WarehouseLoader` (not timed), then times one deletion of
`user-7` through each target as the regulation runner calls it, and the same deletion again
(nothing left: the cost of looking). With `--postgres`, also a PostgreSQL warehouse, in a
database of its own that the script creates on that server and drops afterwards.

A DuckDB or PostgreSQL deletion is one `DELETE ... WHERE user_id IN (...)` per table: a scan of
the column. A lake's is a read of every Parquet file (the subject may be in any), then a
rewrite of those holding the subject.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).parent))
from sluice.config import Settings
from sluice.lake.storage import LocalStorage
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.lake import LakeTarget
from sluice.privacy.targets.warehouses import DuckDBWarehouseTarget, PostgresWarehouseTarget
from sluice.warehouse.loader import WarehouseLoader
from warehouse import GeneratedLog

SUBJECT = Subject("USER_ID", ("user-7",))


class _Log(GeneratedLog):
    def record_unit_stats(self, *args: Any, **kwargs: Any) -> None:
        """The bench has no store to report loads to."""

    def last_seq(self) -> int:
        return len(self.events)


def _load(log: _Log, data_dir: Path, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    loader = WarehouseLoader(Settings(data_dir=data_dir), log, msgspec.json.encode(body))  # type: ignore[arg-type]
    loader.load_once()
    return time.perf_counter() - started


def _timed(target: Any) -> tuple[float, TargetOutcome]:
    started = time.perf_counter()
    outcome: TargetOutcome = asyncio.run(target.delete("bench", SUBJECT))
    return time.perf_counter() - started, outcome


def _report(label: str, target: Any) -> None:
    first, outcome = _timed(target)
    again, repeat = _timed(target)
    print(f"{label:<11} delete {first:6.2f} s  ({outcome.status}, {outcome.removed} rows)"
          f"   again {again:6.2f} s  ({repeat.status}, {repeat.removed})")  # fmt: skip


def _postgres(log: _Log, data_dir: Path, admin_url: str) -> None:
    """Into a database of its own, created on `admin_url`'s server and dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"erasure_bench_{uuid.uuid4().hex[:8]}"
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            pg = {"id": "pgbench", "type": "postgres", "settings": {"url": url}}
            print(f"postgres    loaded in {_load(log, data_dir, pg):.1f} s")
            _report("postgres", PostgresWarehouseTarget("pgbench", url, log.last_seq))
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--only", choices=["duckdb", "lake"], default=None)
    args = parser.parse_args()
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="erasure-bench-"))
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    log = _Log(args.events, "web")
    print(f"{args.events:,} events, {args.events // 20_000:,} of them user-7's; data in {data_dir}")
    try:
        if args.only != "lake":
            _duckdb(log, data_dir)
        if args.only != "duckdb":
            _lake(log, data_dir)
        if args.postgres and args.only is None:
            _postgres(log, data_dir, args.postgres)
    finally:
        if args.dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


def _duckdb(log: _Log, data_dir: Path) -> None:
    duck = {"id": "duck", "type": "duckdb", "settings": {"path": "w.duckdb"}}
    print(f"duckdb      loaded in {_load(log, data_dir, duck):.1f} s")
    _report("duckdb", DuckDBWarehouseTarget("duck", data_dir / "w.duckdb"))


def _lake(log: _Log, data_dir: Path) -> None:
    lake = {"id": "lake", "type": "lake", "settings": {"path": "lake", "compact_files": 0}}
    print(f"lake        loaded in {_load(log, data_dir, lake):.1f} s")
    files = sum(1 for _ in (data_dir / "lake").rglob("*.parquet"))
    print(f"lake        {files} Parquet files")
    _report("lake", LakeTarget("lake", lambda: LocalStorage(data_dir / "lake"), log.last_seq))


if __name__ == "__main__":
    main()
