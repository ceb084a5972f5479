"""Deduplication on messageId: the in-memory `SeenIds` window, and the store keeping it exact
across processes that share one log and across restarts."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.base_event_store import Rejection
from sluice.store.dedupe import DEFAULT_GENERATIONS, SeenIds
from sluice.store.sqlite import SqliteStore

WINDOW = 24_000  # ms; with 24 generations each generation is 1 s
GEN = WINDOW // DEFAULT_GENERATIONS
T0 = 1_000_000_000


# --- SeenIds -----------------------------------------------------------------------------------
def test_first_sight_is_not_a_duplicate_and_the_second_is() -> None:
    seen = SeenIds(WINDOW)
    assert seen.is_duplicate("a", T0) is False
    assert seen.is_duplicate("a", T0) is True
    assert seen.is_duplicate("a", T0 + 1) is True
    assert seen.is_duplicate("b", T0) is False
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("later", "duplicate"),
    [
        (GEN, True),
        (WINDOW // 2, True),
        (WINDOW - 1, True),
        (WINDOW + 2 * GEN, False),
        (10 * WINDOW, False),
    ],
    ids=["one-generation", "half-window", "end-of-window", "past-window", "long-after"],
)
def test_window(later: int, duplicate: bool) -> None:
    seen = SeenIds(WINDOW)
    seen.is_duplicate("a", T0)
    assert seen.is_duplicate("a", T0 + later) is duplicate


def test_an_expired_id_starts_a_new_window() -> None:
    seen = SeenIds(WINDOW)
    seen.is_duplicate("a", T0)
    later = T0 + WINDOW + 2 * GEN
    assert seen.is_duplicate("a", later) is False
    assert seen.is_duplicate("a", later + WINDOW - GEN) is True


def test_sweep_drops_only_expired_ids() -> None:
    seen = SeenIds(WINDOW)
    seen.is_duplicate("old", T0)
    seen.is_duplicate("new", T0 + WINDOW)
    assert seen.sweep(T0) == 0  # nothing has expired
    assert len(seen) == 2
    assert seen.sweep(T0 + WINDOW + 2 * GEN) == 1
    assert len(seen) == 1
    assert seen.is_duplicate("new", T0 + WINDOW + 2 * GEN) is True
    assert seen.is_duplicate("old", T0 + WINDOW + 2 * GEN) is False


def test_sweep_is_a_no_op_within_one_generation() -> None:
    seen = SeenIds(WINDOW)
    seen.is_duplicate("a", T0)
    assert seen.sweep(T0 + WINDOW + 2 * GEN) == 1
    seen.is_duplicate("b", T0)  # an old arrival after the sweep
    assert seen.sweep(T0 + WINDOW + 2 * GEN + 1) == 0
    assert len(seen) == 1


def test_forget_undoes_remembering() -> None:
    seen = SeenIds(WINDOW)
    assert seen.is_duplicate("a", T0) is False
    assert seen.is_duplicate("b", T0) is False
    seen.forget(["a", "never-seen"])
    assert seen.is_duplicate("a", T0) is False
    assert seen.is_duplicate("b", T0) is True


def test_add_records_ids_read_from_the_log_keeping_the_newest() -> None:
    seen = SeenIds(WINDOW)
    seen.add("a", T0 + WINDOW)
    seen.add("a", T0)  # an older copy does not move it back
    assert seen.is_duplicate("a", T0 + 2 * WINDOW - GEN) is True
    seen.add("b", T0)
    assert seen.is_duplicate("b", T0 + WINDOW + 2 * GEN) is False


def test_tiny_windows_do_not_divide_by_zero() -> None:
    seen = SeenIds(0)
    assert seen.window_ms >= 1
    assert seen.generation_ms >= 1
    assert seen.is_duplicate("a", T0) is False
    assert seen.is_duplicate("a", T0) is True


# --- the store, across processes and restarts ---------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def event(message_id: str, at: int | None = None, source_id: str = "web") -> NewEvent:
    payload = msgspec.json.encode({"type": "track", "event": "e", "messageId": message_id})
    return NewEvent(source_id, message_id, "track", "e", now_ms() if at is None else at, payload)


def append(store: SqliteStore, *events: NewEvent) -> tuple[int, int]:
    result = store.append(AppendBatch(events=list(events)))
    return result.stored, result.duplicates


def message_ids(store: SqliteStore) -> list[str]:
    return [e.message_id for e in store.read_after(0, 10_000)]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


@pytest.fixture
def two_stores(path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    """Two store objects on one file, as two collector processes have."""
    a, b = SqliteStore(path), SqliteStore(path)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_two_stores_on_one_file_store_an_id_once(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = two_stores
    assert append(a, event("x"), event("y")) == (2, 0)
    assert append(b, event("x"), event("z")) == (1, 1)
    assert append(a, event("z")) == (0, 1)
    assert message_ids(a) == ["x", "y", "z"]
    assert a.counters()[("web", "duplicates")] == 2


def test_two_stores_interleaving_many_appends(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = two_stores
    for i in range(50):
        first, second = (a, b) if i % 2 else (b, a)
        append(first, event(f"id-{i}"), event(f"id-{i + 1}"))
        append(second, event(f"id-{i}"))
    assert message_ids(a) == [f"id-{i}" for i in range(51)]


def test_reopening_rebuilds_the_seen_set_from_the_log(path: Path) -> None:
    first = SqliteStore(path)
    append(first, event("x"), event("y"))
    first.close()
    second = SqliteStore(path)
    try:
        assert append(second, event("x"), event("y"), event("z")) == (1, 2)
        assert message_ids(second) == ["x", "y", "z"]
    finally:
        second.close()


def test_reopening_forgets_ids_older_than_the_window(path: Path) -> None:
    window_s = 3600
    old = now_ms() - window_s * 1000 - 5 * 60_000
    first = SqliteStore(path, dedupe_window_s=window_s)
    append(first, event("old", at=old), event("recent"))
    first.close()
    second = SqliteStore(path, dedupe_window_s=window_s)
    try:
        assert append(second, event("old"), event("recent")) == (1, 1)
        assert message_ids(second) == ["old", "recent", "old"]
    finally:
        second.close()


def test_a_failed_append_does_not_remember_its_ids(path: Path) -> None:
    store = SqliteStore(path)
    try:
        failing = AppendBatch(events=[event("x")])
        failing.rejections.append(Rejection("web", None, "", 0, b""))  # type: ignore[arg-type]
        with pytest.raises(sqlite3.IntegrityError):
            store.append(failing)
        assert append(store, event("x")) == (1, 0)
        assert message_ids(store) == ["x"]
    finally:
        store.close()


def test_a_failed_append_in_one_store_does_not_confuse_the_other(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    a, b = two_stores
    append(a, event("x"))
    failing = AppendBatch(events=[event("y")])
    failing.rejections.append(Rejection("web", None, "", 0, b""))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        b.append(failing)
    assert append(b, event("x"), event("y")) == (1, 1)
    assert append(a, event("y")) == (0, 1)
    assert message_ids(a) == ["x", "y"]
