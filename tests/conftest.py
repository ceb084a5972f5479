"""Shared fixtures: a real Sluice server (shared by the session, or one per test with its own
settings) and the store behind it. The helpers themselves live in `tests/server.py`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from recorder import Recorder
from server import DEFAULT_SOURCES, SluiceServer, SourceSpec, seed_sources

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

StartServer = Callable[..., SluiceServer]


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
