"""The grouping of a chunk read column by column (intake_columns.py) against `intake.split`
on the same events read as rows, from a real SQLite log, on random logs (test_warehouse_intake.py's:
sources, calls, names missing from the log, `integrations.Warehouses`, repeated messageIds,
payloads that are not JSON)."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_warehouse_intake import SCHEMAS, random_events

from sluice.store.base import StoredEvent
from sluice.store.sqlite import SqliteStore
from sluice.store.sqlite_read import _sqlite_read
from sluice.warehouse import compiled, intake_columns
from sluice.warehouse.intake import Split, split
from sluice.warehouse.intake_columns import split_columns
from sluice.warehouse.shape import ExactPlanNeeded

pytestmark = pytest.mark.skipif(
    _sqlite_read is None or compiled.group() is None, reason="the C extensions are not built"
)


def logged(tmp_path: Path, events: list[StoredEvent]) -> SqliteStore:
    store = SqliteStore(tmp_path / "log.db")
    with store._lock:
        store._db.executemany(
            "INSERT INTO events (seq, source_id, message_id, type, event, received_at, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            events,
        )
    return store


def plain(got: Split) -> Any:
    parts = [
        (key, e.seq.to_pylist(), e.message_id.to_pylist(), list(e.payloads))
        for key, e in got.parts.items()
    ]
    return parts, got.aside, got.skipped, got.duplicates


def both(store: SqliteStore, sources: Any) -> tuple[Any, Any]:
    columns = store.read_columns(0, 100_000)
    assert columns is not None
    rows = store.read_after(0, 100_000)
    results = []
    for fn, given in ((split_columns, (columns,)), (split, (rows,))):
        extra = () if fn is split_columns else ({},)
        try:
            results.append(plain(fn(*given, sources, SCHEMAS.__getitem__, "wh1", *extra)))
        except ExactPlanNeeded:
            results.append("exact")
    return results[0], results[1]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("passes", ["C", "Arrow"])
def test_columns_are_grouped_as_rows_are(
    tmp_path: Path, seed: int, passes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `_group.c`'s passes over the buffers (the words, the repeated ids), and without
    (a Python scan, a group-by)."""
    if passes == "Arrow":
        monkeypatch.setattr(intake_columns, "compiled", SimpleNamespace(group=lambda: None))
    rng = random.Random(seed)
    events = random_events(rng, rng.randint(1, 600), 1)
    if seed % 7 == 0:  # a payload that is not JSON, with "Warehouses" in it
        events[0] = events[0]._replace(payload=b'{"integrations": {"Warehouses"')
    sources = rng.choice([(), ("web", "ios"), ("server",), ("nowhere",)])
    store = logged(tmp_path, events)
    try:
        from_columns, from_rows = both(store, sources)
    finally:
        store.close()
    assert from_columns == from_rows
    grouped = from_rows != "exact" and from_rows[0]
    assert grouped or seed % 7 == 0 or sources == ("nowhere",)


def test_one_group_nothing_repeated_and_everything_dropped(tmp_path: Path) -> None:
    events = [
        e._replace(source_id="web", type="page", event=None, message_id=f"p{e.seq}")
        for e in random_events(random.Random(1), 50, 1)
    ]
    store = logged(tmp_path, events)
    try:
        for sources in [(), ("ios",)]:
            from_columns, from_rows = both(store, sources)
            assert from_columns == from_rows
    finally:
        store.close()


def test_an_empty_read_is_an_empty_split(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    try:
        columns = store.read_columns(0, 10)
        assert columns is not None and len(columns) == 0
        assert plain(split_columns(columns, (), SCHEMAS.__getitem__, "wh1")) == ([], [], 0, 0)
    finally:
        store.close()
