"""Store fixtures: every backend behind one `backend` fixture, and fresh PostgreSQL databases.

PostgreSQL tests use a database of their own, created for the test and dropped after it. They
are skipped when no PostgreSQL answers at 127.0.0.1:5432 (user postgres), and fail when `CI` is
set, since CI must provide one.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from store_kit import Backend

from sluice.store.base import Store
from sluice.store.postgres import PostgresStore
from sluice.store.sqlite import SqliteStore

PG_HOST_URL = "postgresql://postgres@127.0.0.1:5432"
ADMIN_URL = f"{PG_HOST_URL}/postgres"


def _unreachable() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL unreachable at {ADMIN_URL}: {exc}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    reason = _unreachable()
    if reason is not None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}; CI must start it")
        pytest.skip(reason)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        yield conn


@pytest.fixture
def pg_url(pg_admin: psycopg.Connection[tuple[Any, ...]]) -> Iterator[str]:
    """The URL of a fresh, empty database for this test, dropped afterwards."""
    name = f"sluice_store_{uuid.uuid4().hex[:12]}"
    pg_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_HOST_URL}/{name}"
    finally:
        pg_admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


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
