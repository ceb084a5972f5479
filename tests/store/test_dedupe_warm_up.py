"""The collector loads the dedupe window as it starts (`warm_up`), on a connection of its own and
without the writer lock: other processes keep writing, and the first append does not wait."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from sluice.store.base import AppendBatch, NewEvent
from sluice.store.sqlite import SqliteStore


def batch(*ids: str) -> AppendBatch:
    now = int(time.time() * 1000)
    return AppendBatch(events=[NewEvent("web", i, "track", "E", now, b"{}") for i in ids])


def test_warm_up_loads_the_window_while_another_process_holds_the_writer_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    writer = SqliteStore(path)
    writer.append(batch(*(f"m{i}" for i in range(1000))))
    store = SqliteStore(path)
    lock = os.open(str(path) + ".writer-lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another process in the middle of a write
    try:
        store.warm_up()  # returns: it needs no writer lock
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    writer.append(batch("later"))  # appended by someone else after the warm-up
    result = store.append(batch("m7", "later", "new"))
    assert (result.stored, result.duplicates) == (1, 2)
    writer.close()
    store.close()


def test_warm_up_on_an_empty_log_and_twice(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "log.db")
    store.warm_up()
    store.warm_up()
    assert store.append(batch("a", "a")).stored == 1
    store.close()
