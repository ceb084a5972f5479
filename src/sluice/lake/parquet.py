"""Rows as Arrow tables, split by hour, encoded as Parquet: what a lake load writes.

The planner's rows are already typed (Segment's five types: `stage.ARROW_TYPES`); a batch
planned column-wise is read from DuckDB as Arrow without Python touching a value, one planned
event by event is built from its dicts. Each table is then cut by the hour of `received_at`
(the lake's partitions) and each part encoded to a Parquet file in memory, so that storage
only ever receives finished files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from sluice.lake.columnar_tables import ArrowRows
from sluice.lake.layout import partition_of
from sluice.warehouse import compiled
from sluice.warehouse.base import ColumnType, Discard, TableBatch, WarehouseError
from sluice.warehouse.stage import ARROW_TYPES

COMPRESSION = "zstd"  # measured against snappy in bench/lake.py: half the size, ~same CPU
COMPRESSION_LEVEL = 1
DICTIONARY_SAMPLE = 1_000  # first values of a text column looked at to choose its encoding
DICTIONARY_RATIO = 0.2  # dictionary-encoded when at most this share of them is distinct
PARTITION_COLUMN = "received_at"
_HOUR_US = 3_600_000_000
MAX_RUNS = 1_000  # runs of one hour a table is cut into by slicing (more: filtered)
DISCARD_FIELDS = pa.schema(
    [
        ("schema", pa.string()),
        ("table_name", pa.string()),
        ("column_name", pa.string()),
        ("row_id", pa.string()),
        ("value", pa.string()),
        ("reason", pa.string()),
        ("discarded_at", ARROW_TYPES[ColumnType.TIMESTAMP]),
    ]
)


def arrow_schema(columns: dict[str, ColumnType]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[t]) for name, t in columns.items()])


def batch_table(batch: TableBatch) -> pa.Table:
    """A batch's rows as an Arrow table of the batch's column types."""
    schema = arrow_schema(dict(batch.columns))
    staged = batch.staged
    if isinstance(staged, ArrowRows):  # planned by the lake's own planner (columnar_tables.py)
        table: pa.Table = staged.table
        return table if table.schema == schema else table.cast(schema)
    if staged is None:
        return pa.Table.from_pylist(list(batch.rows), schema=schema)
    cursor = staged.engine.cursor()
    try:
        table = cursor.sql(staged.query).to_arrow_table()
    except Exception as exc:  # duckdb.Error, through Arrow
        raise WarehouseError(f"DuckDB could not read the staged rows: {exc}") from exc
    finally:
        cursor.close()
    return table if table.schema == schema else table.cast(schema)


def discards_table(discards: Sequence[Discard], at: datetime) -> pa.Table:
    return pa.table(
        {
            "schema": [d.schema for d in discards],
            "table_name": [d.table for d in discards],
            "column_name": [d.column for d in discards],
            "row_id": [d.row_id for d in discards],
            "value": [d.value for d in discards],
            "reason": [d.reason for d in discards],
            "discarded_at": pa.array([at] * len(discards), DISCARD_FIELDS.field(6).type),
        },
        schema=DISCARD_FIELDS,
    )


def by_hour(
    table: pa.Table, fallback: datetime, column: str = PARTITION_COLUMN
) -> Iterator[tuple[str, pa.Table]]:
    """The table's rows per partition folder (`day=.../hr=..`) of `column`'s hour (UTC);
    rows without one go to `fallback`'s hour. Rows keep their order within a partition."""
    default = int(fallback.timestamp()) // 3600
    if column not in table.column_names:
        yield partition_of(default), table
        return
    micros = pc.cast(table[column], pa.int64())
    hours = pc.fill_null(_floor_div(micros, _HOUR_US), default).combine_chunks()
    distinct = pc.unique(hours)
    if len(distinct) == 1:
        yield partition_of(distinct[0].as_py()), table
        return
    runs = _runs(hours)
    if runs is None:  # hours interleaved: copy each hour's rows out
        for hour in sorted(distinct.to_pylist()):
            yield partition_of(hour), table.filter(pc.equal(hours, hour))
        return
    for hour in sorted(distinct.to_pylist()):  # each hour's runs of rows, not copied
        yield (
            partition_of(hour),
            pa.concat_tables(
                [table.slice(start, end - start) for start, end, h in runs if h == hour]
            ),
        )


def _runs(hours: pa.Array) -> list[tuple[int, int, int]] | None:
    """The table's rows as runs of one hour (start, end, hour), or None when there are more
    than `MAX_RUNS`. A table's rows come group by group, each in log order, so an hour mostly
    holds a few long runs: slicing them costs nothing, where filtering copied every row of
    every hour (~0.9 s of CPU per 1,000,000 events in bench/lake.py)."""
    count = len(hours)
    changed = pc.not_equal(hours.slice(1), hours.slice(0, count - 1))
    ends = pc.indices_nonzero(changed).to_pylist()
    if len(ends) >= MAX_RUNS:
        return None
    starts = [0, *(end + 1 for end in ends)]
    bounds = [*starts[1:], count]
    return [
        (start, end, hour)
        for start, end, hour in zip(starts, bounds, hours.take(starts).to_pylist(), strict=True)
    ]


def _floor_div(values: pa.ChunkedArray, by: int) -> pa.ChunkedArray:
    """Integer division rounding down, before 1970 too (`divide` truncates toward zero)."""
    quotient = pc.divide(values, by)
    above = pc.greater(pc.multiply(quotient, by), values)
    return pc.subtract(quotient, pc.cast(above, pa.int64()))


def write_options(table: pa.Table) -> dict[str, Any]:
    """`pyarrow.parquet.write_table`'s options for a table (bench/lake.py's ceiling uses them).

    Dictionary encoding only for text columns whose first values repeat: building a dictionary
    of ids and other mostly distinct texts costs a third of the encoding and, once zstd has
    compressed the plain values, makes files larger (bench/lake.py's files: 102 MB with every
    column dictionary-encoded, 76 MB so).
    """
    return {
        "compression": COMPRESSION,
        "compression_level": COMPRESSION_LEVEL,
        "use_dictionary": dictionary_columns(table),
    }


def dictionary_columns(table: pa.Table) -> list[str]:
    """Text columns at most `DICTIONARY_RATIO` distinct among their first values."""
    head = table.slice(0, DICTIONARY_SAMPLE)
    chosen = []
    for field in table.schema:
        if field.type != pa.string():
            continue
        values = head[field.name]
        present = len(values) - values.null_count
        limit = math.floor(DICTIONARY_RATIO * present)
        if present and distinct_texts(values, limit) <= limit:
            chosen.append(field.name)
    return chosen


def distinct_texts(values: pa.ChunkedArray, limit: int) -> int:
    """How many distinct non-null texts `values` holds, or some number above `limit` once past
    it: counted in C where built (lake/_distinct.c: ~2x faster than `pc.count_distinct` on the
    first 1,000 values, and it stops past `limit`)."""
    counter = compiled.distinct()
    if counter is None or len(values) > DICTIONARY_SAMPLE:
        return int(pc.count_distinct(values).as_py())
    array = values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()
    if not len(array):
        return 0
    validity, offsets, data = array.buffers()
    return int(
        counter.distinct(
            validity if array.null_count else None,
            offsets,
            b"" if data is None else data,
            array.offset,
            len(array),
            limit,
        )
    )


def parquet_bytes(table: pa.Table) -> memoryview:
    """The table as one Parquet file, in memory."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **write_options(table))
    return memoryview(sink.getvalue())
