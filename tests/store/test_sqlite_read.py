"""The SQLite log read in C (`sluice.store._sqlite_read`) against Python's sqlite3 reading it."""

from __future__ import annotations

import gc
import logging
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from store_kit import batch, event

from sluice.native import DISABLE_ENV
from sluice.store import sqlite_read
from sluice.store.base import NewEvent, StoredEvent
from sluice.store.base_event_store import stored_event
from sluice.store.sqlite import _READ_AFTER, SqliteStore

pytestmark = pytest.mark.skipif(
    sqlite_read._sqlite_read is None, reason="sluice.store._sqlite_read is not built"
)


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def python_read(store: SqliteStore, seq: int, limit: int) -> list[StoredEvent]:
    """The rows as Python's sqlite3 reads them, on a connection of the test's own."""
    db = sqlite3.connect(store.path)
    try:
        return list(map(stored_event, db.execute(_READ_AFTER, (seq, limit)).fetchall()))
    finally:
        db.close()


def varied_events() -> list[NewEvent]:
    """Events whose fields take every form the log holds: no event name, texts past ASCII,
    a payload over SQLite's page size and one of 2 MB, repeated and changing sources."""
    events = [event(f"m{i}", source_id=f"s{i % 3}") for i in range(600)]
    events.append(event("identify-1", type="identify", name=None))
    events.append(event("naïve-✓-😀", source_id="sourcé", name="Añadido al carrito 🛒"))
    big = msgspec.json.encode({"type": "track", "messageId": "big", "blob": "x" * 5000})
    events.append(NewEvent("web", "big", "track", "Big", 1, big))
    huge = msgspec.json.encode({"type": "track", "messageId": "huge", "blob": "é" * 1_000_000})
    events.append(NewEvent("web", "huge", "track", "Huge", 2, huge))
    events.append(NewEvent("web", "empty-name", "track", "", 3, b"{}"))
    return events


def test_the_compiled_reader_returns_the_rows_python_reads(store: SqliteStore) -> None:
    store.append(batch(*varied_events()))
    last = store.last_seq()
    for seq, limit in [(0, 1), (0, 10_000), (5, 7), (last - 4, 100), (last, 10), (0, 0)]:
        read = store._reads.read(seq, limit)
        assert read is not None  # the compiled reader ran
        assert read == python_read(store, seq, limit)
        assert all(type(e) is StoredEvent for e in read)
        assert [list(map(type, e)) for e in read] == [
            list(map(type, e)) for e in python_read(store, seq, limit)
        ]
    events = store.read_after(0, 10_000)
    assert [e.event for e in events[-5:]] == [None, "Añadido al carrito 🛒", "Big", "Huge", ""]
    assert len(events[-2].payload) > 2_000_000


def test_its_rows_are_shared_texts_the_gc_does_not_walk(store: SqliteStore) -> None:
    store.append(batch(*(event(f"m{i}", source_id="web") for i in range(50))))
    events = store.read_after(0, 100)
    assert all(e.source_id is events[0].source_id for e in events)
    assert all(e.type is events[0].type and e.event is events[0].event for e in events)
    assert not any(gc.is_tracked(e) for e in events)
    assert len({id(e.message_id) for e in events}) == 50


def test_rows_appended_after_a_read_are_read_next(store: SqliteStore) -> None:
    store.append(batch(event("a")))
    assert [e.message_id for e in store.read_after(0, 10)] == ["a"]
    store.append(batch(event("b"), event("c")))  # the reader's snapshot ended with its read
    assert [e.message_id for e in store.read_after(0, 10)] == ["a", "b", "c"]
    assert [e.message_id for e in store.read_after(1, 1)] == ["b"]


def test_turned_off_the_store_reads_in_python(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(batch(*varied_events()))
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert store._reads.read(0, 10) is None
    assert store.read_after(0, 10_000) == python_read(store, 0, 10_000)


def test_another_sqlite_copy_is_told_apart_and_not_used(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Python with its own SQLite: the compiled reader's copy keeps its own soft heap limit,
    so the probe set through Python is not the limit read in C."""
    store.append(batch(event("a"), event("b")))
    monkeypatch.setattr(sqlite_read, "_same", None)
    monkeypatch.setattr(sqlite_read, "_sqlite_read", _OtherCopy(sqlite_read._sqlite_read))
    with caplog.at_level(logging.INFO, logger="sluice.store.sqlite_read"):
        assert not sqlite_read.same_library(store._db)
        assert [e.message_id for e in store.read_after(0, 10)] == ["a", "b"]
    assert "its own copy of SQLite" in caplog.text
    (limit,) = store._db.execute("PRAGMA soft_heap_limit").fetchone()
    assert limit == 0  # the probe is undone


def test_the_same_library_is_recognised(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_read, "_same", None)
    assert sqlite_read.same_library(store._db)
    (limit,) = store._db.execute("PRAGMA soft_heap_limit").fetchone()
    assert limit == 0


def test_a_failing_compiled_read_falls_back_to_python_once_warned(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.append(batch(event("a"), event("b")))
    store._reads.close()
    real = sqlite_read._sqlite_read
    monkeypatch.setattr(sqlite_read, "_sqlite_read", _Failing(real))
    with caplog.at_level(logging.WARNING, logger="sluice.store.sqlite_read"):
        for _ in range(3):
            assert [e.message_id for e in store.read_after(0, 10)] == ["a", "b"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "reading it through Python's sqlite3 from now on" in warnings[0].getMessage()
    # Counted where `sluice status` and the metrics read it, once for the process.
    failures = store.unit_stats()[sqlite_read.READS_UNIT]
    assert failures == {sqlite_read.COMPILED_READER_FAILURES: 1}


def test_a_missing_database_file_is_an_error_not_rows(tmp_path: Path) -> None:
    reader = sqlite_read._sqlite_read
    with pytest.raises(OSError, match="unable to open"):
        reader.Reader(str(tmp_path / "missing.db"), _READ_AFTER)


def test_a_closed_reader_refuses_to_read(store: SqliteStore) -> None:
    reader = sqlite_read._sqlite_read.Reader(str(store.path), _READ_AFTER)
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read((0, 1), StoredEvent)


class _OtherCopy:
    """The compiled module as if linked to another SQLite: its own soft heap limit (0)."""

    def __init__(self, real: Any) -> None:
        self.Reader = real.Reader

    @staticmethod
    def soft_heap_limit() -> int:
        return 0


class _Failing:
    """The compiled module whose reader cannot open the file."""

    def __init__(self, real: Any) -> None:
        self.soft_heap_limit = real.soft_heap_limit

    @staticmethod
    def Reader(*args: Any) -> Any:
        raise OSError("sqlite: disk I/O error")


def test_columns_read_are_the_rows_read(store: SqliteStore) -> None:
    """`read_columns` (the lake's read) holds what `read_after` gives, field by field."""
    store.append(batch(*varied_events()))
    last = store.last_seq()
    for seq, limit in [(0, 10_000), (3, 5), (last - 3, 100), (last, 10)]:
        columns = store.read_columns(seq, limit)
        assert columns is not None
        rows = python_read(store, seq, limit)
        assert len(columns) == len(rows)
        assert columns.rows(range(len(columns))) == rows
        if rows:
            assert columns.last_seq == rows[-1].seq
    columns = store.read_columns(0, 10_000)
    assert columns is not None
    assert sorted(columns.sources) == ["s0", "s1", "s2", "sourcé", "web"]  # each text once
    assert columns.events.count("Clicked") == 1
    assert columns.rows([600, 601]) == python_read(store, 0, 10_000)[600:602]


def test_a_null_where_a_column_cannot_hold_one_is_an_error(store: SqliteStore) -> None:
    reader = sqlite_read._sqlite_read.Reader(str(store.path), "SELECT NULL, 1")
    try:
        with pytest.raises(ValueError, match="cannot hold"):
            reader.read_columns((), "bi")
        assert reader.read_columns((), "ci")[1][0][0] == []  # codes: NULL is -1
    finally:
        reader.close()


def test_the_reader_cannot_write(store: SqliteStore) -> None:
    """Its connection is opened read-write (WAL recovery as the store's own) but query_only."""
    store.append(batch(event("a")))
    sql = "DELETE FROM events WHERE seq > ? RETURNING seq"
    reader = sqlite_read._sqlite_read.Reader(str(store.path), sql)
    try:
        with pytest.raises(OSError, match="readonly"):
            reader.read((0,), StoredEvent)
    finally:
        reader.close()
    assert [e.message_id for e in store.read_after(0, 10)] == ["a"]


def test_a_row_the_columns_cannot_hold_is_read_as_rows(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A text where the log has integers (SQLite keeps what it is given): `read_columns` says
    None for that read, once logged, and the same rows are still read as rows."""
    store.append(batch(event("a")))
    with store._lock:
        store._db.execute(
            "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
            " VALUES ('web', 'odd', 'track', 'Clicked', 'soon', x'7b7d')"
        )
    with caplog.at_level(logging.INFO, logger="sluice.store.sqlite_read"):
        assert store.read_columns(0, 10) is None
        assert store.read_columns(0, 10) is None
    assert caplog.text.count("not column by column") == 1
    assert [e.message_id for e in store.read_after(0, 10)] == ["a", "odd"]
    assert store.read_columns(0, 1) is not None  # the rows before it still come as columns
