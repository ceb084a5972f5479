"""Engage fixtures: a real store and the identity tables, on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engage_kit import Rig

from sluice.identity.tables import PostgresIdentityDb, SqliteIdentityDb
from sluice.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgres"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "sqlite":
        result = Rig(SqliteStore(tmp_path / "log.db"), SqliteIdentityDb(tmp_path / "identity.db"))
    else:
        from sluice.store.postgres import PostgresStore

        url = request.getfixturevalue("pg_url")
        result = Rig(PostgresStore(url), PostgresIdentityDb(url))
    try:
        yield result
    finally:
        result.close()


@pytest.fixture
def sqlite_rig(tmp_path: Path) -> Iterator[Rig]:
    result = Rig(SqliteStore(tmp_path / "log.db"), SqliteIdentityDb(tmp_path / "identity.db"))
    try:
        yield result
    finally:
        result.close()
