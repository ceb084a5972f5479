"""Shared fixtures: a real Sluice server (shared by the session, or one per test with its own
settings) and the store behind it. The helpers themselves live in `tests/server.py`."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from recorder import Recorder
from server import DEFAULT_SOURCES, SluiceServer, SourceSpec, StartServer, seed_sources

# Limits of the shared server: small enough that tests can exceed them cheaply. One worker
# process: each worker holds its counters back for a moment, and the barrier tests read counters
# through (`CounterDelta.settle`) is exact for one process. Tests that want several workers
# start their own server.
SHARED_ENV = {
    "SLUICE_WORKERS": "1",
    "SLUICE_MAX_MESSAGE_BYTES": "8192",
    "SLUICE_MAX_BATCH_BYTES": "131072",
    "SLUICE_MAX_BATCH_ITEMS": "50",
}


@pytest.fixture(scope="session")
def sluice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SluiceServer]:
    """One server for the whole session, with sources web, app and off (disabled)."""
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    seed_sources(data_dir)
    server = SluiceServer(data_dir, SHARED_ENV)
    try:
        yield server.start()
    finally:
        server.close()


def _starter(tmp: Path) -> tuple[StartServer, list[SluiceServer]]:
    started: list[SluiceServer] = []
    numbers = itertools.count()

    def start(
        env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        sources: Iterable[SourceSpec] = DEFAULT_SOURCES,
        args: Sequence[str] = (),
    ) -> SluiceServer:
        """Start a server with its own settings; a new data dir unless one is given."""
        if data_dir is None:
            data_dir = tmp / f"data{next(numbers)}"
            seed_sources(data_dir, sources)
        server = SluiceServer(data_dir, env, args)
        started.append(server)
        return server.start()

    return start, started


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """A factory for servers that live as long as the test."""
    start, started = _starter(tmp_path)
    try:
        yield start
    finally:
        for server in started:
            server.close()


@pytest.fixture(scope="module")
def start_module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """A factory for servers that live as long as the test module."""
    start, started = _starter(tmp_path_factory.mktemp("module"))
    try:
        yield start
    finally:
        for server in started:
            server.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A local HTTP server standing in for a destination's API; records what it receives."""
    server = Recorder()
    yield server
    server.stop()


# --- PostgreSQL ---------------------------------------------------------------------------------
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
    """Skips when no PostgreSQL answers at 127.0.0.1:5432; fails instead when `CI` is set."""
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
    name = f"sluice_test_{uuid.uuid4().hex[:12]}"
    pg_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{PG_HOST_URL}/{name}"
    finally:
        pg_admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgres"])
def seeded_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A data dir and the env of servers on it, for each backend (PostgreSQL: a fresh database
    in `SLUICE_DATABASE_URL`), the store seeded with the test sources."""
    data_dir = tmp_path / "data"
    env: dict[str, str] = {}
    if request.param == "postgres":
        env["SLUICE_DATABASE_URL"] = request.getfixturevalue("pg_url")
    seed_sources(data_dir, database_url=env.get("SLUICE_DATABASE_URL"))
    return env, data_dir
