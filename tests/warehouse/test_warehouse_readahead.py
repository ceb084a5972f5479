"""The loader's read-ahead of a log read column by column (warehouse/readahead.py), over a real
SQLite log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.columns import LogColumns
from sluice.store.sqlite import SqliteStore
from sluice.store.sqlite_read import _sqlite_read
from sluice.warehouse.readahead import ColumnsAhead

pytestmark = pytest.mark.skipif(_sqlite_read is None, reason="the log's C reader is not built")


class Recording:
    """The store's `read_columns`, recording each read and its thread; reads ahead wait for
    `gate` when it is clear."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.reads: list[tuple[int, int, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def read_columns(self, seq: int, limit: int) -> LogColumns | None:
        name = threading.current_thread().name
        if name.startswith("log-read") and not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(10)
        self.reads.append((seq, limit, name))
        return self.store.read_columns(seq, limit)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Recording]:
    store = SqliteStore(tmp_path / "log.db")
    events = [
        NewEvent("web", f"m{i}", "track", "Clicked", 1, msgspec.json.encode({"n": i}))
        for i in range(100)
    ]
    store.append(AppendBatch(events=events))
    try:
        yield Recording(store)
    finally:
        store.close()


def seqs(columns: LogColumns | None) -> list[int]:
    assert columns is not None
    return [e.seq for e in columns.rows(range(len(columns)))]


def test_the_next_chunk_is_read_on_its_thread_while_this_one_is_used(log: Recording) -> None:
    ahead = ColumnsAhead(log.read_columns, "log-read-test")
    try:
        assert seqs(ahead.read(0, 30)) == list(range(1, 31))
        assert seqs(ahead.read(30, 30)) == list(range(31, 61))
        assert seqs(ahead.read(60, 20)) == list(range(61, 81))  # not the 30 read ahead
        assert seqs(ahead.read(80, 30)) == list(range(81, 101))  # the log's end
    finally:
        ahead.close()
    here = threading.current_thread().name
    assert [(s, n) for s, n, name in log.reads if name == here] == [(0, 30), (60, 20), (80, 30)]
    read_ahead = [(s, n) for s, n, name in log.reads if name.startswith("log-read-test")]
    # (60, 30) was read ahead for nothing, unless the mismatch cancelled it before it started
    assert read_ahead in ([(30, 30), (60, 30)], [(30, 30)])


def test_nothing_is_read_ahead_past_a_short_read(log: Recording) -> None:
    ahead = ColumnsAhead(log.read_columns, "log-read-test")
    try:
        assert len(seqs(ahead.read(80, 50))) == 20
    finally:
        ahead.close()
    assert [(s, n) for s, n, _ in log.reads] == [(80, 50)]


def test_close_waits_for_the_read_in_flight(log: Recording) -> None:
    ahead = ColumnsAhead(log.read_columns, "log-read-test")
    log.gate.clear()
    ahead.read(0, 10)
    assert log.waiting.wait(10)  # the read ahead has started
    closer = threading.Thread(target=ahead.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close waits for it
    log.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [(s, n) for s, n, _ in log.reads] == [(0, 10), (10, 10)]
