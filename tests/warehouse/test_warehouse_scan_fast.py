"""The compiled reader's fast paths agree with reading a byte at a time.

`_scan.c` finds the end of each string 16 bytes at a time (SSE2, on x86-64), matches known
keys on the payload's bytes before scanning them and reads a timestamp in the minute of the one
before from its seconds on; `_scan.fast(False)` turns them off. Both ways
must give the same outputs of every kind, bitmaps and irregular events for any payload: here
random objects with escapes, unicode, nested objects, arrays, odd whitespace, strings longer than
16 bytes with the byte that ends them at every position, invalid UTF-8 and truncated texts.
(test_warehouse_scan.py compares the reader itself with DuckDB.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.warehouse.readers import (
    BOOLEAN,
    FLOAT,
    INTEGER,
    MOMENT_TEXT,
    NONE,
    PRESENT_ANY,
    PRESENT_VALUE,
    RAW,
    STRING,
    TEXT_ALL,
    TEXT_VALUE,
    TIMESTAMP,
    CompiledReader,
)
from sluice.warehouse.shape import Node, discover

_scan = pytest.importorskip("sluice.warehouse._scan", reason="built without a C compiler")

KEYS = ["id", "name", "price", "a", "a_much_longer_key_than_16", "café", "キー", 'q"t', "b\\s", ""]
PIECES = [*'ab "\\/\n\t\x01é€😀\u2028', "x" * 17, "2023-05-01T10:00:00Z"]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
SCALARS = st.one_of(
    TEXTS,
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([True, False, None, 1.5, 19.99, 0.001]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    ),
    max_leaves=12,
)
OBJECTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)


def render(value: Any, gap: str, ascii_only: bool) -> str:
    """JSON text of `value`, with `gap` after separators (whitespace DuckDB would drop)."""
    return json.dumps(value, ensure_ascii=ascii_only, separators=("," + gap, ":" + gap))


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    text = render(
        draw(OBJECTS), draw(st.sampled_from(["", "", " ", "\n\t"])), draw(st.booleans())
    ).encode()
    change = draw(st.sampled_from(["none", "none", "cut", "drop", "byte", "insert"]))
    if change == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif change == "drop" and text:  # e.g. an escape's backslash: "q"t" is not the key q"t
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + text[at + 1 :]
    elif change in ("byte", "insert") and text:
        at = draw(st.integers(0, len(text) - 1))
        byte = draw(st.sampled_from([b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xff", b'"', b"\\"]))
        text = text[:at] + byte + text[at + (change == "byte") :]
    return text


OPS = (RAW, STRING, TEXT_ALL, TEXT_VALUE, MOMENT_TEXT, INTEGER, FLOAT, BOOLEAN, TIMESTAMP, NONE)


def outputs(reader: CompiledReader) -> Iterator[tuple[int, int, int, int, bool]]:
    """Every kind of output: one or two a path, some with an `alt` path (a page's name, else
    the property), and one with no path."""
    paths = len(reader.index)
    for path, at in reader.index.items():  # `at`: the path's number, from 0
        presence = PRESENT_VALUE if at % 2 else PRESENT_ANY
        yield (OPS[(len(path) + at) % len(OPS)], presence, at, -1, bool(at % 3))
        if at % 3 == 0:
            yield (OPS[at % 5], presence, at, -1, True)
        if at % 4 == 1:
            yield (OPS[at % len(OPS)], presence, at, (at + 1) % paths, bool(at % 2))
    yield (STRING, PRESENT_ANY, -1, 0 if paths else -1, True)


def read(texts: tuple[bytes, ...], reader: CompiledReader, fast: bool) -> Any:
    before = _scan.fast(fast)
    try:
        columns, flag, ok, odd = _scan.read_bytes(
            texts, reader.spec, len(reader.index), list(outputs(reader))
        )
    finally:
        _scan.fast(before)
    return [[bytes(memoryview(b)) for b in c] for c in columns], flag, ok, odd


@settings(max_examples=300, deadline=None)
@given(st.lists(payloads(), min_size=1, max_size=30), st.integers(0, 29))
def test_fast_and_byte_by_byte_reads_agree(texts: list[bytes], learnt: int) -> None:
    tree = Node()
    for text in texts[: learnt + 1]:  # a tree from some of them: others hold unknown keys
        try:
            msg = json.loads(text)
            json.dumps(msg, ensure_ascii=False).encode()  # no lone surrogate (keys are UTF-8)
        except (ValueError, UnicodeError):
            continue
        discover(msg, tree)
    reader = CompiledReader(tree)
    assert read(tuple(texts), reader, True) == read(tuple(texts), reader, False)


def test_long_strings_end_at_every_position() -> None:
    """A string's end, an escape, a control or a non-ASCII byte at each offset of 16-byte
    blocks, and a text ending in the middle of a block."""
    texts = []
    for size in range(40):
        for tail in ['"', '\\n"', '\x01"', 'é"', "\xff"]:
            body = "v" * size
            text = f'{{"id":"{body}{tail},"name":"{body}"}}'.encode("utf-8", "surrogateescape")
            texts += [text, text[:-3], text.replace(b"\xc3\xa9", b"\xc3")]
    for key in (b'q"t', b'q\\"t', b"b\\s", b"b\\\\s"):  # "q"t" is not the key q"t, nor "b\s" b\s
        texts.append(b'{"id":"x","name":"y","' + key + b'":1}')
    tree = Node()
    discover({"id": "x", "name": "y", 'q"t': 1, "b\\s": 1}, tree)
    reader = CompiledReader(tree)
    fast, slow = read(tuple(texts), reader, True), read(tuple(texts), reader, False)
    assert fast == slow
    assert 0 < bin(int.from_bytes(fast[3], "little")).count("1") < len(texts)  # some irregular


def test_the_setting_is_reported() -> None:
    before = _scan.fast(False)
    try:
        assert _scan.fast(True) is False
    finally:
        _scan.fast(before)


MINUTES = st.sampled_from(  # a few, so that one timestamp is mostly in the minute of another
    [
        "2024-02-29T23:59:",
        "2024-02-29T23:58:",  # the same hour
        "2024-12-29T23:59:",  # another month
        "2023-02-29T23:59:",  # no such day
        "2024-02-29T24:59:",  # nor hour
        "1969-12-31T23:59:",  # before 1970
    ]
)
SECONDS = st.builds(
    "{:02d}{}".format,
    st.sampled_from([0, 59, 60, 99]),
    st.sampled_from(["Z", ".001Z", ".123456Z", ".12Z", "", "+00:00", ".1234567Z", "z"]),
)
MOMENTS = st.one_of(st.builds(str.__add__, MINUTES, SECONDS), st.sampled_from(["2024-02-29", ""]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(MOMENTS, MOMENTS, st.sampled_from(["", "x", "2023-11-14"])), max_size=40))
def test_timestamps_read_from_their_minute_agree(rows: list[tuple[str, str, str]]) -> None:
    """The fast path reads a timestamp in the minute of the one before from its seconds on:
    valid or not, in range or not, its values are the byte-by-byte path's."""
    texts = tuple(
        json.dumps({"a": a, "b": b, "c": c}, separators=(",", ":")).encode() for a, b, c in rows
    )
    tree = Node()
    discover({"a": "", "b": "", "c": ""}, tree)
    reader = CompiledReader(tree)
    specs = [(TIMESTAMP, PRESENT_ANY, at, -1, True) for at in reader.index.values()]

    def read_timestamps(fast: bool) -> Any:
        before = _scan.fast(fast)
        try:
            columns, flag, ok, odd = _scan.read_bytes(texts, reader.spec, len(specs), specs)
        finally:
            _scan.fast(before)
        return [[bytes(memoryview(b)) for b in c] for c in columns], flag, ok, odd

    assert read_timestamps(True) == read_timestamps(False)
