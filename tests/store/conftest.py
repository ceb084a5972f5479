"""Store fixtures: every backend behind one `backend` fixture, and fresh PostgreSQL databases.

PostgreSQL tests use a database of their own (the `pg_url` fixture of tests/conftest.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from store_kit import Backend

from sluice.store.base import Store
from sluice.store.postgres import PostgresStore
from sluice.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "log.db"
        result = Backend("sqlite", lambda **kw: SqliteStore(path, **kw), (sqlite3.IntegrityError,))
    else:
        url: str = request.getfixturevalue("pg_url")
        result = Backend(
            "postgres", lambda **kw: PostgresStore(url, **kw), (psycopg.IntegrityError,)
        )
    try:
        yield result
    finally:
        result.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A SQLite store alone (tests of what only SQLite does), closed afterwards."""
    store = SqliteStore(tmp_path / "log.db")
    try:
        yield store
    finally:
        store.close()
