"""What only the embedded SQLite store does: its file, WAL mode and errors. The protocol itself is
tested against every backend in test_store.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_kit import batch, event

from sluice.config import Settings
from sluice.store.errors import StoreUnavailable
from sluice.store.factory import open_store
from sluice.store.sqlite import SqliteStore


@pytest.fixture
def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def test_the_log_is_in_wal_mode(store: SqliteStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_open_store_uses_the_data_dir(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path / "nested" / "data"))
    try:
        assert isinstance(store, SqliteStore)
        store.append(batch(event("a")))
    finally:
        store.close()
    assert (tmp_path / "nested" / "data" / "log.db").exists()


def test_unopenable_path_raises_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "log.db").mkdir()  # a directory where the database file should be
    with pytest.raises(StoreUnavailable, match="cannot open"):
        SqliteStore(tmp_path / "log.db")
