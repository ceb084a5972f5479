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

from sluice.warehouse.base import ColumnType
from sluice.warehouse.readers import (
    PRESENT_ANY,
    PRESENT_VALUE,
    RAW,
    STRING,
    CompiledReader,
    ListReader,
    Output,
    tree_spec,
)
from sluice.warehouse.shape import MOMENT, PICK, TEXT, VALUE, Node, Source, discover
from sluice.warehouse.sqlfit import present_sql, typed_sql
from sluice.warehouse.stage import ARROW_TYPES, SQL_TYPES, compiled_op, json_sql

# An install without a C compiler has no compiled reader to compare (compiled.py).
_scan = pytest.importorskip("sluice.warehouse._scan", reason="built without a C compiler")

KEYS = ["id", "name", "price", "a", "b", "user_id", "0", "café", "x/y", "t~1"]
NUMBERS = [
    "0", "1", "-5", "42", "1.5", "1.0", "100.0", "-0.5", "0.25", "19.99", "0.001", "0.1",
    "123456789012345", "999999999999999999", "12345678901234567890", "1.50", "1e2", "1E-7",
    "-0", "-0.0", "0.00001", "0.30000000000000004", "123456789012345.5", "2.5e10",
]  # fmt: skip
STRINGS = [
    '"plain"', '""', '"Chloé"', '"a/b"', '"line\\nbreak"', '"q\\"uote"', '"\\u00e9"',
    '"\\/"', '"2023-05-01T10:00:00Z"', '"tab\\t"', '"€ 5"', '"2024-02-29T23:59:59.999Z"',
    '"2023-02-29"', '"2023-01-01T24:00:00Z"', '"0000-01-01"', '"2024-01-02T03:04:05.123456Z"',
    '"1969-12-31T23:59:59.5Z"', '"2023-05-01"', '"1e5"', '"0.00001"', '"12345678901234567"',
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
    Returns (read, irregular)."""
    db = duckdb.connect()
    arrow = pa.table(
        {
            "seq": pa.array(range(1, len(payloads) + 1), pa.int64()),
            "message_id": pa.array([f"m{n}" for n in range(len(payloads))]),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    compiled, listed = CompiledReader(tree), ListReader(tree)
    raws = [Output(f"w{i + 1}", RAW, path) for path, i in compiled.index.items()]
    read, odd_events = compiled.tables(arrow, raws)
    db.register("r", _with_payload(arrow, read))
    odd_seqs = [
        seq
        for seq, odd in zip(read["seq"].to_pylist(), read["sluice_odd"].to_pylist(), strict=True)
        if odd
    ]
    assert odd_events["seq"].to_pylist() == odd_seqs
    assert odd_events["payload"].to_pylist() == [payloads[seq - 1] for seq in odd_seqs]
    ws = [f"w{i}" for i in listed.index.values()]
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
    arrow = pa.table(
        {"seq": [1, 2, 3], "message_id": ["m1", "m2", "m3"], "payload": payloads},
        schema=pa.schema(
            [("seq", pa.int64()), ("message_id", pa.string()), ("payload", pa.string())]
        ),
    )
    rows, odd_events = CompiledReader(tree).tables(arrow, [])
    assert rows["sluice_read_ok"].to_pylist() == [True, True, True]
    assert odd_events.num_rows == 0


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
    raw = [(RAW, PRESENT_ANY, 0, -1, False)]
    texts, flag, ok, odd = _scan.read(offsets, data, 0, 1, tree_spec(tree, {("a",): 1}), 1, raw)
    assert odd == b"\x01" and ok == b"\x00" and flag == b"\x00"
    assert texts[0][0] == b"\x00"  # no text given


def test_a_malformed_tree_is_refused() -> None:
    offsets = pa.array([0, 2], pa.int32()).buffers()[1]
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(5, False, True, [])], 1, [])
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(-1, False, True, [(b"a", 7)])], 0, [])
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 2, [(-1, False, True, [])], 0, [])  # offsets too short
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(-1, False, True, [])], 0, [(RAW, 0, 3, -1, False)])
    with pytest.raises(ValueError):
        _scan.read(offsets, b"{}", 0, 1, [(-1, False, True, [])], 0, [(99, 0, -1, -1, False)])


# Every role and type a stage column can have (a page's name, PICK, when the test gives an alt).
TYPED = [(role, column_type) for role in (TEXT, VALUE, MOMENT) for column_type in ColumnType]


@pytest.mark.parametrize("seed", range(3))
def test_compiled_values_are_the_sql_values_or_flagged(seed: int) -> None:
    """Where the compiled reader gives a value it is the SQL's; where it gives NULL for a
    present value, the row is flagged (Python decides, as for the SQL's NULLs)."""
    rng = random.Random(seed)
    pool = [*NUMBERS, *STRINGS, "true", "false", "null", "[1,2]", '{"k":1}', "{}", '["1e5"]']
    keys = "abcdefgh"
    payloads = [
        "{"
        + ",".join(
            [f'"messageId":"m{n}"']
            + [f'"{k}":{rng.choice(pool)}' for k in rng.sample(keys, rng.randint(1, 3))]
        )
        + "}"
        for n in range(600)
    ]
    tree = Node()
    for text in payloads:
        discover(json.loads(text), tree)
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    arrow = pa.table(
        {
            "seq": pa.array(range(1, len(payloads) + 1), pa.int64()),
            "message_id": pa.array([f"m{n}" for n in range(len(payloads))]),
            "payload": pa.array(payloads, pa.string()),
        }
    )
    compiled, listed = CompiledReader(tree), ListReader(tree)
    paths = list(compiled.index)
    given = flagged = 0
    for path in paths:
        alt = rng.choice([None, rng.choice(paths)])
        for op, (role, column_type) in [(STRING, (TEXT, ColumnType.VARCHAR))] + [
            (compiled_op(PICK if alt else role, t), (PICK if alt else role, t)) for role, t in TYPED
        ]:
            pick = alt if op != STRING else None  # ids and names have no alternative
            source = Source(role, path, alt=pick or ())
            presence = PRESENT_VALUE if role == VALUE else PRESENT_ANY
            out = Output("v", op, path, ARROW_TYPES[column_type], pick, presence, flagged=True)
            db.register("r", _with_payload(arrow, compiled.tables(arrow, [out])[0]))
            w = json_sql(source, listed.json)
            if op == STRING:
                sql = f"json_extract_string({w}, '$')"
            else:
                sql = f"CAST({typed_sql(role, column_type, w)[0]} AS {SQL_TYPES[column_type]})"
            rows = db.execute(
                f"SELECT c.seq, c.v, c.sluice_flag, c.sluice_odd, s.v, s.p"
                f" FROM r c JOIN (SELECT seq, {sql} AS v, {present_sql(role, w)} AS p"
                f" FROM {listed.source('r')}) s USING (seq)"
            ).fetchall()
            for seq, mine, flag, odd, theirs, was_present in rows:
                if odd:
                    continue
                if mine is not None:
                    given += 1
                    assert mine == theirs, (payloads[seq - 1], path, op)
                    assert not flag
                else:
                    assert flag == (bool(was_present) and op != STRING), (payloads[seq - 1], op)
                    flagged += flag
    assert given > 500 and flagged > 50


def _with_payload(events: pa.Table, read: pa.Table) -> pa.Table:
    """The compiled reader's table with the payloads again (the list reader reads them)."""
    return read.append_column("payload", events.column("payload"))
