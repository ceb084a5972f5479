"""Upkeep of the PostgreSQL store, off the append path: partitions ahead, expired ids out.

Why a thread: making a partition or deleting a slice of `seen_ids` must never delay a group
commit, so an appending store does both in the background (the append path keeps a synchronous
fallback for partitions, for when the log outruns this thread). Failures are logged and tried
again on the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from sluice.store.postgres_schema import NOW_MS_SQL, SWEEP_LOCK

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 10.0
SEEN_SWEEP_INTERVAL_S = 60.0
SEEN_SWEEP_SLICE = 5000
# Ids are kept this long past the window: collectors' clocks (which stamp received_at) may be
# behind the database's, which decides what has expired.
SEEN_SWEEP_MARGIN_MS = 15 * 60 * 1000


def sweep_expired_ids(
    conn: psycopg.Connection[Any], window_ms: int, stopping: threading.Event
) -> int:
    """Delete the ids past the window (plus the margin) in slices; returns how many.

    One node at a time does it (the others find the lock taken and skip this round). Deleting an
    expired id while another node upserts it is harmless: the upsert then inserts it, as new.
    """
    locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (SWEEP_LOCK,)).fetchone()
    if not locked or not locked[0]:
        return 0
    total = 0
    try:
        row = conn.execute(
            f"SELECT {NOW_MS_SQL} - %s", (window_ms + SEEN_SWEEP_MARGIN_MS,)
        ).fetchone()
        assert row is not None
        while not stopping.is_set():
            deleted = conn.execute(
                "DELETE FROM seen_ids WHERE ctid = ANY(ARRAY(SELECT ctid FROM seen_ids"
                " WHERE received_at < %s LIMIT %s))",
                (int(row[0]), SEEN_SWEEP_SLICE),
            ).rowcount
            total += deleted
            if deleted < SEEN_SWEEP_SLICE:
                break
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
    return total


class Maintenance:
    """The background thread: `extend` every round (or when woken), `sweep` every minute."""

    def __init__(self, extend: Callable[[], None], sweep: Callable[[threading.Event], int]) -> None:
        self._extend = extend
        self._sweep = sweep
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-store-maintenance")
        self._thread.daemon = True
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_sweep = time.monotonic() + SEEN_SWEEP_INTERVAL_S
        while True:
            self._wake.wait(MAINTENANCE_INTERVAL_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._extend()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + SEEN_SWEEP_INTERVAL_S
                    self._sweep(self._stop)
            except Exception:
                log.exception("store maintenance failed; trying again in a while")
