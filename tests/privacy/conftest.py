"""Privacy fixtures: the store on each backend (PostgreSQL: a fresh database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.config import Settings
from sluice.store.base import Store
from sluice.store.factory import open_store


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings of a data dir under tmp_path, on SQLite or a fresh PostgreSQL database."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    try:
        yield opened
    finally:
        opened.close()
