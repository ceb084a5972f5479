"""Identity fixtures: the identity tables on each backend (PostgreSQL: a fresh database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.identity.tables import IdentityDb, PostgresIdentityDb, SqliteIdentityDb


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdentityDb]:
    if request.param == "sqlite":
        result: IdentityDb = SqliteIdentityDb(tmp_path / "identity.db")
    else:
        result = PostgresIdentityDb(request.getfixturevalue("pg_url"))
    try:
        yield result
    finally:
        result.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[IdentityDb]:
    result = SqliteIdentityDb(tmp_path / "identity.db")
    try:
        yield result
    finally:
        result.close()
