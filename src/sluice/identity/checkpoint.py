"""WAL checkpoints of identity.db off the consumer's step: a background thread, its own connection.

SQLite's automatic checkpoint runs on the committing connection, inside the commit: every
~4 MB of WAL a step copied the pages back into the database file and fsynced it, in the
consumer's time (about as long as the step's own writes at 100k profiles). The consumer's
connection turns it off (`wal_autocheckpoint=0`) and this thread runs PASSIVE checkpoints
instead, which wait for no one: the copying and the fsync happen beside the step. It runs one
right after each of the consumer's commits (and every `interval` otherwise), while the consumer
reads and parses its next step outside any transaction.

A PASSIVE checkpoint never makes the WAL start over: SQLite rewinds it only when a write
transaction begins while every frame is already in the database file, and the consumer begins
the next step right after a commit, before the thread has caught up. So when the WAL passes
`rewind_bytes`, the consumer's own connection runs one more PASSIVE checkpoint just before its
next transaction (only the frames the thread has not copied yet: a fraction of one step), and
that transaction writes from the WAL's start again. A reader holding an old snapshot can stop
that rewind; past `limit_bytes` the consumer runs a RESTART checkpoint instead, which waits for
such readers, so the WAL does not grow without bound. It waits `RESTART_WAIT_MS` at most, and
after a refusal only PASSIVE is tried for `RESTART_BACKOFF_S`: a reader holding one snapshot for
minutes (a Profiles Sync export) lets the WAL grow while it lasts rather than stall every step.

Durability is unchanged: a commit is durable (or not) by the WAL and `synchronous` alone; a
checkpoint only moves committed pages into the database file.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
INTERVAL_S = 0.2
REWIND_BYTES = 64 << 20
LIMIT_BYTES = 256 << 20
RESTART_WAIT_MS = 2000
RESTART_BACKOFF_S = 30.0
BUSY_TIMEOUT_MS = 30000  # the connections' own (tables.py)


class Checkpointer:
    """PASSIVE checkpoints after each commit and every `interval` seconds until `stop`;
    `wal_bytes` is the WAL's length in frames (not the file's size, which a rewind keeps) as
    last seen."""

    def __init__(
        self,
        path: Path,
        interval: float = INTERVAL_S,
        rewind_bytes: int = REWIND_BYTES,
        limit_bytes: int = LIMIT_BYTES,
    ) -> None:
        self.interval, self.rewind_bytes, self.limit_bytes = interval, rewind_bytes, limit_bytes
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.frame_bytes = page_size + 24  # a WAL frame: its header and one page
        self.wal_bytes = 0
        self.checkpoints = 0
        self.restarts_refused = 0
        self.failures = 0  # in a row
        self.failures_total = 0
        self._restart_after = 0.0
        # One checkpointer at a time: SQLite refuses a second at once (SQLITE_BUSY, no wait);
        # held by `writing` through a transaction that should rewind the WAL.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a commit just happened: copy its frames now
        self._thread = threading.Thread(target=self._run, name="identity-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                self.checkpoint(self.conn, "PASSIVE")
        finally:
            self.conn.close()

    def checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        """Checkpoint on `conn` (this thread's, or the consumer's between steps) and note the
        WAL's length; whether it finished."""
        with self._lock:
            return self._checkpoint(conn, mode)

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        # An error is logged once until a checkpoint succeeds again (the thread retries every
        # `interval`: a lasting failure must not write a line five times a second).
        try:
            busy, frames, _done = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error:
            self.failures += 1
            self.failures_total += 1
            if self.failures == 1:
                log.exception("identity.db: %s checkpoint failed (retrying quietly)", mode)
            return False
        if self.failures:
            log.info("identity.db: checkpoints work again after %d failures", self.failures)
            self.failures = 0
        self.checkpoints += 1
        self.wal_bytes = max(frames, 0) * self.frame_bytes
        return not busy

    @contextlib.contextmanager
    def writing(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Around the consumer's write transactions: once the WAL is long, checkpoint it just
        before one (see the module docstring) and keep the thread's checkpoints off until that
        transaction ends: SQLite rewinds the WAL at its first write only if no checkpoint is
        under way beside it."""
        if self.wal_bytes < self.rewind_bytes:
            yield
            self._wake.set()  # copied while the consumer reads its next step
            return
        with self._lock:
            now = time.monotonic()
            if self.wal_bytes < self.limit_bytes or now < self._restart_after:
                self._checkpoint(conn, "PASSIVE")
            else:
                conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                try:
                    if not self._checkpoint(conn, "RESTART"):
                        self.restarts_refused += 1
                        self._restart_after = now + RESTART_BACKOFF_S
                        log.warning("identity.db: WAL past its limit; a reader holds it (%d MiB)",
                                    self.wal_bytes >> 20)  # fmt: skip
                finally:
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self.wal_bytes = 0  # the thread's next pass says whether the rewind happened
            yield
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread and close its connection (waits for a checkpoint under way)."""
        self._stop.set()
        self._wake.set()
        self._thread.join()
