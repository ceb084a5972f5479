"""A messageId in the SQLite log that is not UTF-8 (only another writer, or a damaged file, puts
one there): it is read with U+FFFD in place of its bad bytes, by the compiled reader and by
Python's sqlite3 alike, so neither the consumers of that part of the log nor the appends (their
deduplication window holds it) stop there."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_kit import batch, event, now_ms

from server import SLUICE, clean_env
from sluice.metrics.cluster import ClusterCollector
from sluice.native import DISABLE_ENV
from sluice.store import sqlite_read
from sluice.store.base_event_store import EventQuery
from sluice.store.sqlite import SqliteStore

BAD = "\ufffda"  # x'ff61' as read


@pytest.fixture(params=["compiled", "python"])
def path(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A log of three events, the second one's messageId the bytes ff 61 stored as TEXT."""
    if request.param == "compiled" and sqlite_read._sqlite_read is None:
        pytest.skip("sluice.store._sqlite_read is not built")
    if request.param == "python":
        monkeypatch.setenv(DISABLE_ENV, "1")
    path = tmp_path / "log.db"
    store = SqliteStore(path)
    store.append(batch(event("a")))
    store.close()
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
            " VALUES ('web', CAST(x'ff61' AS TEXT), 'track', 'Clicked', ?, x'7b7d')",
            (now_ms(),),
        )
    db.close()
    store = SqliteStore(path)
    store.append(batch(event("c")))
    store.close()
    monkeypatch.setattr(sqlite_read, "_undecodable_logged", False)
    yield path


def test_the_log_reads_past_it(path: Path) -> None:
    store = SqliteStore(path)
    try:
        assert [e.message_id for e in store.read_after(0, 10)] == ["a", BAD, "c"]
        assert [e.message_id for e in store.read_after(1, 1)] == [BAD]
        assert [e.message_id for e in store.newest(EventQuery(limit=10))] == ["c", BAD, "a"]
        assert [e.message_id for e in store.read_after(0, 10)] == ["a", BAD, "c"]
    finally:
        store.close()


def test_each_reader_warns_once_naming_the_file(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The compiled reader counts the texts it replaced; the Python path sees sqlite3 refuse."""
    store = SqliteStore(path)
    try:
        with caplog.at_level(logging.WARNING, logger="sluice.store.sqlite_read"):
            for _ in range(3):
                assert [e.message_id for e in store.read_after(0, 10)] == ["a", BAD, "c"]
    finally:
        store.close()
    warned = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert warned == [f"{path} holds text that is not UTF-8 (not written by Sluice): it is read"
                      " with U+FFFD in place of the bad bytes"]  # fmt: skip


def replaced(store: SqliteStore) -> int:
    """Texts read with U+FFFD as the store recorded them (`sluice status`, the metrics)."""
    return store.unit_stats().get(sqlite_read.READS_UNIT, {}).get(sqlite_read.TEXTS_REPLACED, 0)


def test_each_read_of_it_is_counted(path: Path) -> None:
    """Every read that met the text counts it, on each reader, recorded once the read is over
    (the fixture's append already read it once, loading its deduplication window)."""
    store = SqliteStore(path)
    try:
        before = replaced(store)
        assert before >= 1
        for _ in range(3):
            store.read_after(0, 10)
        store.newest(EventQuery(limit=10))
        assert store.read_after(2, 10)[0].message_id == "c"  # not past it: not counted
        assert replaced(store) == before + 4
        assert store._trouble.pending == {}
    finally:
        store.close()


def test_status_and_the_metrics_show_the_count(path: Path) -> None:
    """`sluice status` (the fixture's file is a data dir's log.db) and the cluster metrics."""
    store = SqliteStore(path)
    try:
        store.read_after(0, 10)
        count = replaced(store)
        samples = {
            sample.name: sample.value
            for metric in ClusterCollector(store).collect()
            for sample in metric.samples
        }
    finally:
        store.close()
    assert samples["sluice_log_texts_replaced_total"] == count
    assert samples["sluice_log_compiled_reader_failures_total"] == 0
    shown = subprocess.run(
        [*SLUICE, "status", "--data-dir", str(path.parent)],
        env=clean_env({"COLUMNS": "200"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # The CLI's own reads may count more: at least what was recorded before it.
    line = next(line for line in shown.splitlines() if line.startswith("event log reads:"))
    assert int(line.split()[3]) >= count, line
    assert "texts not UTF-8 read with U+FFFD, 0 compiled readers failed" in line


@pytest.mark.parametrize("warm", [True, False], ids=["warmed-up", "first-append"])
def test_appends_load_the_dedupe_window_past_it(path: Path, warm: bool) -> None:
    """A store opening on that log loads the ids of its deduplication window (at warm-up or at
    its first append) and keeps appending and deduplicating."""
    store = SqliteStore(path)
    try:
        if warm:
            store.warm_up()
        first = store.append(batch(event("d"), event("a")))
        assert (first.stored, first.duplicates) == (1, 1)
        with store._lock:  # another process appends behind it: caught up past the odd row
            store._db.execute(
                "INSERT INTO events (source_id, message_id, type, event, received_at, payload)"
                " VALUES ('web', CAST(x'fe62' AS TEXT), 'track', 'Clicked', ?, x'7b7d')",
                (now_ms(),),
            )
        second = store.append(batch(event("e"), event("d")))
        assert (second.stored, second.duplicates) == (1, 1)
        ids = [e.message_id for e in store.read_after(0, 10)]
        assert ids == ["a", BAD, "c", "d", "\ufffdb", "e"]
    finally:
        store.close()
