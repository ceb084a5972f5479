"""Cutting a table by the hour of `received_at` (parquet.by_hour): slices of runs of one hour,
or filtered copies when the hours interleave too much; the same rows, in the same order."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from sluice.lake import parquet
from sluice.lake.layout import partition_of

HOUR_US = 3_600_000_000
NOW = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


def expected(table: pa.Table) -> dict[str, list[int]]:
    """Each partition's row numbers, in table order, by a plain loop."""
    out: dict[str, list[int]] = {}
    default = int(NOW.timestamp()) // 3600
    for i, value in enumerate(table["received_at"].cast(pa.int64()).to_pylist()):
        hour = default if value is None else value // HOUR_US  # floor, before 1970 too
        out.setdefault(partition_of(hour), []).append(i)
    return dict(sorted(out.items()))


def table_of(rng: random.Random, groups: int, rows: int) -> pa.Table:
    """Rows group by group (each in time order, as a lake's tables are), some without a time."""
    pieces = []
    for _ in range(groups):
        start = rng.randrange(-3, 3) * HOUR_US + rng.randrange(HOUR_US)
        times = sorted(start + rng.randrange(3 * HOUR_US) for _ in range(rows))
        values = [None if rng.random() < 0.02 else t for t in times]
        pieces.append(pa.table({"received_at": pa.array(values, pa.timestamp("us", "UTC"))}))
    table = pa.concat_tables(pieces)  # chunked, as the planner's tables are
    return table.append_column("n", pa.array(range(table.num_rows), pa.int64()))


@pytest.mark.parametrize("max_runs", [parquet.MAX_RUNS, 2])  # slices; filters
@pytest.mark.parametrize("seed", range(6))
def test_by_hour_keeps_rows_and_order(
    seed: int, max_runs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "MAX_RUNS", max_runs)
    table = table_of(random.Random(seed), groups=1 + seed, rows=200)
    got = {part: rows["n"].to_pylist() for part, rows in parquet.by_hour(table, NOW)}
    assert got == expected(table)
    assert len(got) > 1


def test_one_hour_is_the_table_itself() -> None:
    table = pa.table({"received_at": pa.array([5, 6, None], pa.timestamp("us", "UTC"))})
    assert [
        (p, t is table) for p, t in parquet.by_hour(table, datetime(1970, 1, 1, tzinfo=UTC))
    ] == [(partition_of(0), True)]
