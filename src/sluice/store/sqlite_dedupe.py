"""The SQLite store's deduplication window: the messageIds of the log's recent events, in memory.

The set itself is `dedupe.SeenIds`. Here it is loaded from the log (at warm-up, outside the
writer lock, or by the first append) and caught up, inside each append's write transaction, on
the rows other processes appended since: so deduplication is exact across processes sharing
one file. Mixed into `SqliteStore`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sluice.store.dedupe import SeenIds
from sluice.store.sqlite_read import RecordsReadTrouble, tolerating_bad_text


class SqliteSeenIds(RecordsReadTrouble):
    """Mixed into `SqliteStore`: uses its connection and lock; `_seen_seq` is None until the
    window is loaded, then the log position the set is caught up to."""

    path: Path
    _db: sqlite3.Connection
    _lock: threading.Lock
    _seen: SeenIds
    _seen_seq: int | None

    def warm_up(self) -> None:
        """Load the dedupe window's ids now, on a read-only connection of its own and outside
        the writer lock: done by the first append instead, it held every process's writes for
        as long (4.6 s with 1,000,000 events in the window). Appends catch up from there."""
        if self._seen_seq is not None:
            return
        uri = Path(self.path).absolute().as_uri() + "?mode=ro"  # escapes ?, # and % in the path
        reader = sqlite3.connect(uri, uri=True, timeout=30.0)
        try:
            reader.execute("BEGIN")  # one snapshot for both reads
            window_ms = self._seen.window_ms
            seen, last = tolerating_bad_text(
                reader, self.path, self._trouble, lambda: _load_window(reader, window_ms)
            )
            reader.execute("COMMIT")
        finally:
            reader.close()
        with self._lock:
            if self._seen_seq is None:  # no append loaded it meanwhile
                self._seen, self._seen_seq = seen, last
        self._record_trouble()

    def _catch_up(self) -> None:
        """Bring the seen-id set up to the log's end (first load, or other processes' appends)."""
        db = self._db
        if self._seen_seq is None:
            window_ms = self._seen.window_ms
            self._seen, self._seen_seq = tolerating_bad_text(
                db, self.path, self._trouble, lambda: _load_window(db, window_ms)
            )
            return
        tolerating_bad_text(db, self.path, self._trouble, self._catch_up_rows)
        self._seen.sweep(int(time.time() * 1000))

    def _catch_up_rows(self) -> None:
        assert self._seen_seq is not None
        for seq, message_id, received_at in self._db.execute(
            "SELECT seq, message_id, received_at FROM events WHERE seq > ?", (self._seen_seq,)
        ):
            self._seen.add(message_id, received_at)
            self._seen_seq = seq


def _load_window(db: sqlite3.Connection, window_ms: int) -> tuple[SeenIds, int]:
    """The ids received within the dedupe window, newest first, and the log position read to."""
    seen = SeenIds(window_ms)
    # Clocks of processes sharing one log may differ: read a minute past the window.
    cutoff = int(time.time() * 1000) - window_ms - 60_000
    last = 0
    for seq, message_id, received_at in db.execute(
        "SELECT seq, message_id, received_at FROM events ORDER BY seq DESC"
    ):
        if received_at < cutoff:
            break
        last = max(last, seq)
        seen.add(message_id, received_at)
    if not last:
        last = int(db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    return seen, last
