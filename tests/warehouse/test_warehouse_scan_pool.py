"""The compiled reader's outputs reuse freed memory (`_pool.c`) and read as fresh ones.

A freed output buffer goes to a list of its size and the next output of that size takes it,
with whatever the last one left there: each output must still start from nothing (an offsets
buffer from 0, zeros under NULL numbers) and a text that grows must keep what it had.
`_scan.release()` frees it all; the loader calls it after each load (test_lake_memory.py).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from sluice.warehouse.readers import INTEGER, PRESENT_ANY, STRING, TIMESTAMP, CompiledReader
from sluice.warehouse.shape import Node, discover

_scan = pytest.importorskip("sluice.warehouse._scan", reason="built without a C compiler")

MOMENT = "2023-11-14T22:13:20.001Z"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()  # as the log holds it


def reader() -> CompiledReader:
    tree = Node()
    discover({"id": "x", "n": 1, "at": MOMENT, "long": "y"}, tree)
    return CompiledReader(tree)


def read(texts: list[bytes], compiled: CompiledReader) -> tuple[Any, ...]:
    """`read_bytes` with a text, an integer and a timestamp output, and a text that grows."""
    index = compiled.index
    spec = [
        (STRING, PRESENT_ANY, index[("id",)], -1, False),
        (INTEGER, PRESENT_ANY, index[("n",)], -1, False),
        (TIMESTAMP, PRESENT_ANY, index[("at",)], -1, False),
        (STRING, PRESENT_ANY, index[("long",)], -1, False),
    ]
    columns, _, _, odd = _scan.read_bytes(tuple(texts), compiled.spec, len(index), spec)
    assert not any(odd)
    return tuple(columns)


def texts(buffers: tuple[Any, ...], count: int) -> list[str | None]:
    valid, offsets, chars = (pa.py_buffer(b) for b in buffers)
    return pa.StringArray.from_buffers(count, offsets, chars, valid).to_pylist()


def test_freed_outputs_are_reused_and_read_as_fresh_ones() -> None:
    _scan.release()
    compiled = reader()
    count = 3000
    full = [
        dumps({"id": f"m-{i}", "n": i + 1, "at": MOMENT, "long": "z" * (i % 700)})
        for i in range(count)
    ]
    first = read(full, compiled)
    assert texts(first[0], count) == [f"m-{i}" for i in range(count)]
    assert texts(first[3], count) == ["z" * (i % 700) for i in range(count)]
    assert memoryview(first[1][1]).cast("q").tolist() == [i + 1 for i in range(count)]
    del first
    blocks, kept = _scan.kept()
    assert blocks >= 4 and kept > sum(i % 700 for i in range(count))  # the long texts' block

    bare = [dumps({"id": f"n-{i}", "long": "w" * (i % 500)}) for i in range(count)]
    second = read(bare, compiled)  # in the blocks the first read filled
    assert _scan.kept()[0] < blocks
    assert texts(second[0], count) == [f"n-{i}" for i in range(count)]
    assert texts(second[3], count) == ["w" * (i % 500) for i in range(count)]
    for valid, values in (second[1], second[2]):  # NULL everywhere, and zeros under the NULLs
        assert not any(bytes(memoryview(valid)))
        assert not any(bytes(memoryview(values)))
    del second

    assert _scan.release() > 0
    assert _scan.kept() == (0, 0)
