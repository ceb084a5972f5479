"""Rows as PostgreSQL's binary COPY format: what the PostgreSQL warehouse sends (postgres.py).

Rows planned in DuckDB are read as Arrow batches and each batch encoded at once, in C where
`_pgcopy.c` is built (compiled.py), else in Python (`python_copy_rows`: the same bytes, slower).
Apart from postgres.py because it is the format, not the database: the bench and the tests
compare the two encoders on their own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]

from sluice.warehouse import compiled
from sluice.warehouse.base import ColumnType, WarehouseError
from sluice.warehouse.stage import ARROW_TYPES  # the types staged rows have

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_COPY_KINDS: Mapping[ColumnType, int] = {  # _pgcopy.c's KIND_*
    ColumnType.VARCHAR: 0,
    ColumnType.INTEGER: 1,
    ColumnType.FLOAT: 2,
    ColumnType.BOOLEAN: 3,
    ColumnType.TIMESTAMP: 4,
}
_ARROW_ROWS = 20_000  # rows per Arrow batch read from DuckDB and encoded at once


def binary_rows(
    engine: duckdb.DuckDBPyConnection, query: str, types: Sequence[ColumnType]
) -> Iterator[bytes]:
    """The query's rows as binary COPY data (header, rows, trailer), its columns of `types`.

    A DuckDB error is raised before the trailer, inside the caller's COPY, so that a COPY never
    commits part of the rows.
    """
    cursor = engine.cursor()
    try:
        try:
            reader = cursor.sql(query).to_arrow_reader(_ARROW_ROWS)
            encode = _encoder()
            yield _COPY_HEADER
            for batch in reader or ():
                arrays = []
                for array, column_type in zip(batch.columns, types, strict=True):
                    if array.type != ARROW_TYPES[column_type]:
                        array = array.cast(ARROW_TYPES[column_type])
                    arrays.append(array)
                yield encode(batch.num_rows, arrays, types)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:  # DuckDB's, through Arrow
            raise WarehouseError(f"DuckDB could not read the staged rows: {exc}") from exc
        yield _COPY_TRAILER
    finally:
        cursor.close()


Encoder = Callable[[int, Sequence[pa.Array], Sequence[ColumnType]], bytes]


def _encoder() -> Encoder:
    """`_pgcopy.c`'s encoder where it is built (compiled.py), else the one in Python."""
    pgcopy = compiled.pgcopy()
    if pgcopy is None:
        return python_copy_rows

    def encode(count: int, arrays: Sequence[pa.Array], types: Sequence[ColumnType]) -> bytes:
        columns = []
        for array, column_type in zip(arrays, types, strict=True):
            buffers = array.buffers()
            valid = buffers[0] if array.null_count else None
            data = buffers[2] if column_type is ColumnType.VARCHAR else None
            columns.append((_COPY_KINDS[column_type], array.offset, valid, buffers[1], data))
        return pgcopy.encode(count, columns)  # type: ignore[no-any-return]

    return encode


_NULL_FIELD = b"\xff\xff\xff\xff"  # length -1
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970
_FIELD_FORMATS: Mapping[ColumnType, struct.Struct] = {
    ColumnType.INTEGER: struct.Struct(">iq"),
    ColumnType.FLOAT: struct.Struct(">id"),
    ColumnType.BOOLEAN: struct.Struct(">i?"),
    ColumnType.TIMESTAMP: struct.Struct(">iq"),
}


def python_copy_rows(count: int, arrays: Sequence[pa.Array], types: Sequence[ColumnType]) -> bytes:
    """Binary COPY rows in Python, for installs without `_pgcopy` (the same bytes, slower)."""
    columns: list[list[bytes]] = []
    for array, column_type in zip(arrays, types, strict=True):
        if column_type is ColumnType.TIMESTAMP:
            array = array.cast(pa.int64())
        values = array.to_pylist()
        if column_type is ColumnType.VARCHAR:
            fields = []
            for value in values:
                if value is None:
                    fields.append(_NULL_FIELD)
                else:
                    data = value.encode()
                    fields.append(len(data).to_bytes(4, "big") + data)
        else:
            form = _FIELD_FORMATS[column_type]
            size, shift = form.size - 4, _PG_EPOCH_US if column_type is ColumnType.TIMESTAMP else 0
            fields = [_NULL_FIELD if v is None else form.pack(size, v - shift) for v in values]
        columns.append(fields)
    head = len(arrays).to_bytes(2, "big")
    if not columns:
        return head * count
    return b"".join(head + b"".join(row) for row in zip(*columns, strict=True))
