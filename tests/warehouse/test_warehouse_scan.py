"""The compiled reader (`_scan.c`) against DuckDB's list reader, on random events and trees.

Events are written as raw JSON text, in the forms clients send and the ones DuckDB rewrites
(escapes, `1.50`, `1e2`, `-0`, long numbers, whitespace, repeated keys, arrays where objects
were seen), so that every rule deciding what the compiled reader may read is exercised.
"""

from __future__ import annotations

import json
import random
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from sluice.warehouse import _scan  # type: ignore[attr-defined]
from sluice.warehouse.readers import CompiledReader, ListReader, tree_spec
from sluice.warehouse.shape import Node, discover

KEYS = ["id", "name", "price", "a", "b", "user_id", "0", "café", "x/y", "t~1"]
NUMBERS = [
    "0", "1", "-5", "42", "1.5", "1.0", "100.0", "-0.5", "0.25", "19.99", "0.001", "0.1",
    "123456789012345", "999999999999999999", "12345678901234567890", "1.50", "1e2", "1E-7",
    "-0", "-0.0", "0.00001", "0.30000000000000004", "123456789012345.5", "2.5e10",
]  # fmt: skip
STRINGS = [
    '"plain"', '""', '"Chloé"', '"a/b"', '"line\\nbreak"', '"q\\"uote"', '"\\u00e9"',
    '"\\/"', '"2023-05-01T10:00:00Z"', '"tab\\t"', '"€ 5"',
]  # fmt: skip


class Text:
    """A JSON value with the exact text to write it as (`json.loads` gives its value)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Obj(list[tuple[str, Any]]):
    """An object's members in order (repeats allowed)."""


def value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return obj(rng, depth + 1)
    if depth < 3 and roll < 0.35:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.55:
        return Text(rng.choice(NUMBERS))
    if roll < 0.85:
        return Text(rng.choice(STRINGS))
    return Text(rng.choice(["true", "false", "null"]))


def obj(rng: random.Random, depth: int) -> Obj:
    keys = rng.sample(KEYS, rng.randint(0, 4))
    if keys and rng.random() < 0.03:
        keys.append(keys[0])  # a repeated key
    return Obj((k, value(rng, depth)) for k in keys)


def render(item: Any, rng: random.Random, spaced: bool) -> str:
    gap = " " if spaced and rng.random() < 0.3 else ""
    if isinstance(item, Text):
        return item.text
    if isinstance(item, Obj):
        members = [f'"{k}":{gap}{render(v, rng, spaced)}' for k, v in item]
        if rng.random() < 0.02 and members:
            members[0] = '"caf\\u00e9":1'  # an escaped key
        return "{" + f",{gap}".join(members) + "}"
    return "[" + f",{gap}".join(render(v, rng, spaced) for v in item) + "]"


def events(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        body = obj(rng, 0)
        body.insert(0, ("messageId", Text(f'"m{n}"')))
        out.append(render(body, rng, spaced=rng.random() < 0.05))
    return out


def compare(payloads: list[str], tree: Node) -> tuple[int, int]:
    """Both readers over the same events: equal texts and ok wherever the compiled one reads,
    and equal on every event through `CompiledReader.source`. Returns (read, irregular)."""
    db = duckdb.connect()
    arrow = pa.table(
        {
            "seq": pa.array(range(1, len(payloads) + 1), pa.int64()),
            "message_id": pa.array([f"m{n}" for n in range(len(payloads))]),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    compiled, listed = CompiledReader(tree), ListReader(tree)
    db.register("r", compiled.table(arrow))
    ws = [f"w{i}" for i in listed.index.values()]
    columns = ", ".join([*ws, "ok"])
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            f"SELECT seq, {', '.join(ws) or 'NULL'}, coalesce({listed.ok()}, true) AS ok"
            f" FROM {listed.source('r')}"
        ).fetchall()
    }
    raw = {
        r[0]: r[1:]
        for r in db.execute(
            f"SELECT seq, {', '.join(ws) or 'NULL'}, sluice_read_ok, sluice_odd FROM r"
        ).fetchall()
    }
    both = {
        r[0]: r[1:]
        for r in db.execute(
            f"SELECT seq, {', '.join(ws) or 'NULL'}, coalesce({compiled.ok()}, true)"
            f" FROM {compiled.source('r')}"
        ).fetchall()
    }
    assert both == rows, columns
    read = 0
    for seq, expected in rows.items():
        *texts, ok, odd = raw[seq]
        if odd:
            continue
        read += 1
        assert (*texts, ok) == expected, payloads[seq - 1]
    return read, len(payloads) - read


@pytest.mark.parametrize("seed", range(8))
def test_compiled_reader_agrees_with_duckdb(seed: int) -> None:
    payloads = events(seed, 600)
    tree = Node()
    rng = random.Random(seed)
    for text in rng.sample(payloads, 40):  # a partial tree: many events hold unknown keys
        discover(json.loads(text), tree)
    read, irregular = compare(payloads, tree)
    assert read > 100 and irregular > 20  # both paths are exercised


def test_full_tree_reads_every_regular_event_as_ok() -> None:
    payloads = [
        '{"messageId":"m1","properties":{"price":19.99,"tags":["a","b"],"n":null}}',
        '{"messageId":"m2","properties":{"price":5,"tags":[],"n":{"deep":1}}}',
        '{"messageId":"m3","properties":{"price":5,"tags":[],"n":{}}}',
    ]
    tree = Node()
    for text in payloads:
        discover(json.loads(text), tree)
    read, irregular = compare(payloads, tree)
    assert (read, irregular) == (3, 0)


@pytest.mark.parametrize(
    "payload",
    [
        '{"a":1',  # cut short
        '{"a":1}x',  # trailing bytes
        "[1,2]",  # not an object
        '{"a":tru}',
        '{"a":"\x01"}',  # a control character in a string
        '{"a":01}',
        '{"a":1.}',
        "",
    ],
)
def test_malformed_json_is_left_to_duckdb(payload: str) -> None:
    data = payload.encode()
    offsets = pa.array([0, len(data)], pa.int32()).buffers()[1]
    tree = Node()
    discover({"a": 1}, tree)
    texts, ok, odd = _scan.read(offsets, data, 0, 1, tree_spec(tree, {("a",): 1}), 1)
    assert odd == b"\x01" and ok == b"\x00"
    assert texts[0][0] == b"\x00"  # no text given


def test_a_malformed_tree_is_refused() -> None:
    offsets = pa.array([0, 2], pa.int32()).buffers()[1]
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(5, False, True, [])], 1)
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(-1, False, True, [(b"a", 7)])], 0)
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 2, [(-1, False, True, [])], 0)  # offsets too short
