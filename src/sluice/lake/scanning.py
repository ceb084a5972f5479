"""The compiled reader over a group's payloads as the log holds them (bytes objects).

`readers.CompiledReader.tables` reads an Arrow string column: the payloads joined into one
buffer first, ~1 GB of copying and fresh pages per 1,000,000 events. `_scan.read_bytes` reads
the same texts where they are, with the same tree, outputs and results (it is `_scan.read` over
other buffers): the lake's chunks keep each group's payloads as the log's bytes objects
(intake.py) and join only the few events DuckDB must read (irregular ones) or a query asks for.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa  # type: ignore[import-untyped]

from sluice.warehouse import compiled
from sluice.warehouse.intake import Events, Gathered, events_table, picked
from sluice.warehouse.readers import (
    MOMENT_TEXT,
    NONE,
    RAW,
    STRING,
    TEXT_ALL,
    TEXT_VALUE,
    CompiledReader,
    Output,
)
from sluice.warehouse.shape import Path

_TEXT_OPS: Final = (RAW, STRING, TEXT_ALL, TEXT_VALUE, MOMENT_TEXT)


def read_events(
    reader: CompiledReader, events: Events, outputs: list[Output]
) -> tuple[pa.Table, pa.Table]:
    """As `reader.tables(events_table(events), outputs)`: the rows the compiled reader read
    (seq, message_id, the outputs, `sluice_flag`, `sluice_read_ok`, `sluice_odd`), and the
    irregular events as Arrow (seq, message_id, payload) for DuckDB. Needs `_scan` built."""
    scan = compiled.scan()
    if scan is None:
        raise RuntimeError("sluice.warehouse._scan is not built")

    def at(path: Path | None) -> int:
        return -1 if path is None else reader.index.get(path, -1)

    spec = [(o.op, o.presence, at(o.path), at(o.alt), o.flagged) for o in outputs]
    count = len(events)
    payloads = events.payloads
    if isinstance(payloads, Gathered):  # in the log's columns: read where they are
        _, offsets, data = payloads.texts.buffers()
        at = payloads.at.buffers()[1].slice(payloads.at.offset * 4, count * 4)
        read = scan.read_gather(offsets, data, at, reader.spec, len(reader.index), spec)
    else:
        read = scan.read_bytes(payloads, reader.spec, len(reader.index), spec)
    columns, flag, ok, odd = read
    arrays = [_array(o, b, count) for o, b in zip(outputs, columns, strict=True)]
    odd_mask = _bits(odd, count)
    arrays += [_bits(flag, count), _bits(ok, count), odd_mask]
    names = [o.name for o in outputs] + ["sluice_flag", "sluice_read_ok", "sluice_odd"]
    rows = pa.Table.from_arrays(
        [events.seq, events.message_id, *arrays], names=["seq", "message_id", *names]
    )
    if not odd_mask.true_count:
        return rows, events_table(Events(events.seq.slice(0, 0), events.message_id.slice(0, 0), ()))
    odd_rows = [i for i, irregular in enumerate(odd_mask.to_pylist()) if irregular]
    irregular = Events(
        events.seq.take(odd_rows),
        events.message_id.take(odd_rows),
        picked(events.payloads, odd_rows),
    )
    return rows, events_table(irregular)  # ExactPlanNeeded for a payload that is not UTF-8


def _array(output: Output, buffers: tuple[bytes, ...], count: int) -> pa.Array:
    """An output's Arrow array from `_scan`'s buffers (`_scan.output_buffers`)."""
    valid = pa.py_buffer(buffers[0])
    if output.op in _TEXT_OPS:
        offsets, chars = pa.py_buffer(buffers[1]), pa.py_buffer(buffers[2])
        return pa.StringArray.from_buffers(count, offsets, chars, valid)
    if output.op == NONE:
        return pa.nulls(count, output.arrow_type)
    # booleans (a bitmap), integers, floats, timestamps (8 bytes a value): of the column's type
    return pa.Array.from_buffers(output.arrow_type, count, [valid, pa.py_buffer(buffers[1])])


def _bits(bitmap: bytes, count: int) -> pa.Array:
    return pa.Array.from_buffers(pa.bool_(), count, [None, pa.py_buffer(bitmap)])
