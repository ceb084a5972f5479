"""The lake reads each group's payloads where the log keeps them (`_scan.read_bytes`), and
samples only groups it has no tree for: the same values as the Arrow reader, the same lake as
the DuckDB warehouse over several chunks (keys learnt late, first values found by DuckDB,
irregular and non-UTF-8 payloads)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from lake_kit import T1, load

from sluice.config import Settings
from sluice.lake.backend import LakeBackend
from sluice.lake.query import connect
from sluice.lake.scanning import read_events
from sluice.lake.storage import LocalStorage
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore
from sluice.warehouse import compiled
from sluice.warehouse.base import ColumnType
from sluice.warehouse.duckdb import DuckDBBackend
from sluice.warehouse.intake import Events, events_table
from sluice.warehouse.loader import WarehouseLoader
from sluice.warehouse.readers import (
    BOOLEAN,
    FLOAT,
    INTEGER,
    PRESENT_VALUE,
    RAW,
    STRING,
    TEXT_ALL,
    TIMESTAMP,
    CompiledReader,
    Output,
)
from sluice.warehouse.shape import ExactPlanNeeded, Node, discover
from sluice.warehouse.stage import ARROW_TYPES

VALUES = [
    "1", "-5", "19.99", "1.50", "1e2", "true", "false", "null", '"plain"', '"Chloé"', '"€ 5"',
    '"q\\"uote"', '"2024-02-29T23:59:59.999Z"', '"2023-05-01T10:00:00Z"', '{"x":1}', "{}",
    "[1,2]", '"日本"',
]  # fmt: skip
KEYS = ["a", "b", "price", "when", "name"]
OPS = [
    (RAW, pa.string()),
    (STRING, pa.string()),
    (TEXT_ALL, pa.string()),
    (INTEGER, ARROW_TYPES[ColumnType.INTEGER]),
    (FLOAT, ARROW_TYPES[ColumnType.FLOAT]),
    (BOOLEAN, ARROW_TYPES[ColumnType.BOOLEAN]),
    (TIMESTAMP, ARROW_TYPES[ColumnType.TIMESTAMP]),
]


def _payloads(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        members = [f'"messageId":"m{n}"']
        for key in rng.sample(KEYS, rng.randint(1, len(KEYS))):
            members.append(f'"{key}":{rng.choice(VALUES)}')
        if rng.random() < 0.1:
            members.append('"props":{"deep":' + rng.choice(VALUES) + "}")
        gap = " " if rng.random() < 0.05 else ""
        out.append(("{" + f",{gap}".join(members) + "}").encode())
    return out


def _events(payloads: list[bytes]) -> Events:
    n = len(payloads)
    seq = pa.array(range(1, n + 1), pa.int64())
    return Events(seq, pa.array([f"m{i}" for i in range(n)]), tuple(payloads))


@pytest.mark.skipif(compiled.scan() is None, reason="sluice.warehouse._scan is not built")
@pytest.mark.parametrize("seed", range(4))
def test_reading_the_payloads_in_place_gives_the_arrow_readers_rows(seed: int) -> None:
    payloads = _payloads(seed, 400)
    tree = Node()
    for text in random.Random(seed).sample(payloads, 30):  # a partial tree: unknown keys too
        discover(json.loads(text), tree)
    reader = CompiledReader(tree)
    outputs = [
        Output(f"o{n}_{op}", op, path, arrow_type, presence=PRESENT_VALUE, flagged=True)
        for n, path in enumerate(reader.index)
        for op, arrow_type in OPS
    ]
    events = _events(payloads)
    rows, odd = read_events(reader, events, outputs)
    expected_rows, expected_odd = reader.tables(events_table(events), outputs)
    assert rows.equals(expected_rows.combine_chunks())
    assert odd.equals(expected_odd)
    flags = rows["sluice_odd"].to_pylist()
    assert 0 < sum(flags) < len(flags) and any(rows["sluice_read_ok"].to_pylist())


@pytest.mark.skipif(compiled.scan() is None, reason="sluice.warehouse._scan is not built")
def test_a_payload_that_is_not_utf8_is_irregular_and_refused_when_made_arrow() -> None:
    payloads = [b'{"messageId":"m0","a":"ok"}', b'{"messageId":"m1","a":"\xff\xfe"}']
    tree = Node()
    discover({"messageId": "m0", "a": "ok"}, tree)
    reader = CompiledReader(tree)
    with pytest.raises(ExactPlanNeeded, match="not UTF-8"):
        read_events(reader, _events(payloads), [Output("a", RAW, ("a",))])
    rows, odd = read_events(reader, _events(payloads[:1]), [Output("a", RAW, ("a",))])
    assert rows["a"].to_pylist() == ['"ok"'] and odd.num_rows == 0


def _append_raw(store: SqliteStore, payloads: list[tuple[str, str, bytes]]) -> None:
    events = [NewEvent("web", mid, "track", event, 0, body) for mid, event, body in payloads]
    store.append(AppendBatch(events=events))


def _track(n: int, event: str, **properties: Any) -> tuple[str, str, bytes]:
    msg = {
        "messageId": f"t-{n}",
        "type": "track",
        "event": event,
        "userId": f"u{n}",
        "receivedAt": T1,
        "timestamp": T1,
        "properties": properties,
    }
    return f"t-{n}", event, msgspec.json.encode(msg)


def _tables(db: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    names = [
        t
        for (t,) in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'"
        ).fetchall()
    ]
    out = {}
    for name in names:
        result = db.execute(f'SELECT * EXCLUDE (uuid_ts) FROM web."{name}" ORDER BY id')
        columns = [(d[0], str(d[1])) for d in result.description or ()]
        rows = [
            tuple(
                sorted(
                    (c, v) for (c, _), v in zip(columns, r, strict=True) if c not in {"day", "hr"}
                )
            )
            for r in result.fetchall()
        ]
        out[name] = [tuple(sorted(c for c in columns if c[0] not in {"day", "hr"})), *rows]
    return out


def test_later_chunks_learn_keys_and_first_values_without_a_sample(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    try:
        _append_raw(store, [_track(n, "Paid", total=1.5, note=None) for n in range(4)])
        _append_raw(  # chunk 2: a new key, the first value of `note`, texts DuckDB reads
            store,
            [
                _track(4, "Paid", total=2, note="late", color="red"),
                _track(5, "Paid", total=3.25, note='q"uote', color="Chloé"),
                _track(6, "Paid", total=4.5, note="日本", size=9),
                _track(7, "Other", ok=True),
            ],
        )
        bad = b'{"messageId":"t-9","type":"track","event":"Paid","userId":"u9",'
        bad += b'"receivedAt":"' + T1.encode() + b'","properties":{"note":"\xff"}}'
        _append_raw(store, [_track(8, "Paid", total=1, note="x"), ("t-9", "Paid", bad)])
        _append_raw(store, [_track(n, "Paid", total=n, note="y", color="blue") for n in (10, 11)])
        report = load(store, tmp_path / "lake", chunk=4)
        assert report.events == 12
        expected, got = _both(store, tmp_path, 4)
    finally:
        store.close()
    assert set(got) == set(expected) == {"tracks", "paid", "other"}
    for name, rows in expected.items():
        assert got[name] == rows, name
    notes = {dict(row)["id"]: dict(row).get("note") for row in got["paid"][1:]}
    assert notes["t-4"] == "late" and notes["t-5"] == 'q"uote' and notes["t-6"] == "日本"
    assert notes["t-9"] == "\ufffd"  # the exact planner's reading of the broken text


def _both(
    store: SqliteStore, tmp_path: Path, chunk: int, sources: list[str] | None = None
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """The DuckDB warehouse loaded from the same log, and the lake at tmp_path/lake, read."""
    path = tmp_path / "warehouse.duckdb"
    body = msgspec.json.encode({"id": "main", "type": "duckdb", "sources": sources or []})
    WarehouseLoader(
        Settings(), store, body, backend_factory=lambda c: DuckDBBackend(path), chunk_events=chunk
    ).load_once()
    with duckdb.connect(str(path), read_only=True) as wh:
        wh.execute("SET TimeZone = 'UTC'")
        expected = _tables(wh)
    with connect(LakeBackend(LocalStorage(tmp_path / "lake"))) as lake:
        return expected, _tables(lake)


def test_events_set_aside_leave_the_groups_as_the_warehouse_has_them(tmp_path: Path) -> None:
    """Repeated messageIds, `integrations.Warehouses`, other sources and a group of one event:
    the pieces intake.py sorts with some events set aside."""
    store = SqliteStore(tmp_path / "log.db")
    try:
        _append_raw(store, [_track(n, "Paid", total=n) for n in range(3)])
        _append_raw(store, [_track(1, "Paid", total=99)])  # t-1 again: dropped
        skip = {
            "messageId": "t-50",
            "type": "track",
            "event": "Paid",
            "receivedAt": T1,
            "integrations": {"Warehouses": {"all": False}},
            "properties": {"total": 7},
        }
        events = [
            NewEvent("web", "t-50", "track", "Paid", 0, msgspec.json.encode(skip)),
            NewEvent("ios", "t-60", "track", "Paid", 0, _track(60, "Paid", total=6)[2]),
            NewEvent("web", "t-70", "track", "Lone", 0, _track(70, "Lone", one=True)[2]),
        ]
        store.append(AppendBatch(events=events))
        _append_raw(store, [_track(n, "Paid", total=n) for n in (4, 5)])
        body = msgspec.json.encode({"id": "lake", "type": "lake", "sources": ["web"]})
        loader = WarehouseLoader(
            Settings(),
            store,
            body,
            backend_factory=lambda c: LakeBackend(LocalStorage(tmp_path / "lake"), compact_files=0),
            chunk_events=100,
        )
        report = loader.load_once()
        assert (report.events, report.duplicates, report.skipped) == (9, 1, 2)
        expected, got = _both(store, tmp_path, 100, ["web"])
    finally:
        store.close()
    assert set(got) == set(expected) == {"tracks", "paid", "lone"}
    for name, rows in expected.items():
        assert got[name] == rows, name
    ids = {dict(row)["id"] for row in got["tracks"][1:]}
    assert ids == {"t-0", "t-1", "t-2", "t-4", "t-5", "t-70"}
