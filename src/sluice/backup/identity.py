"""The identity graph's file (identity.db) in a backup of the embedded store.

The graph (profiles, merges, traits) and Engage's computed traits and audiences are derived
from the log, but the log keeps only `SLUICE_LOG_RETENTION_DAYS`: a restore without them would
rebuild profiles from the last days' events only. So identity.db is copied as the log is (one
read snapshot, sqlite_copy.py), and *before* the log's snapshot: the restored graph's position
is then never past the restored log's end, so no event the restored node numbers anew is one
the graph believes it has read. What it has not read yet must still be in the copied log
(coverage.py).

With PostgreSQL the graph's tables are in the store's database, which `pg_dump` copies.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sluice.backup.manifest import BackupFile, file_digest
from sluice.backup.sqlite_copy import HAS_TABLE, snapshot_copy
from sluice.identity.tables import SQLITE_FILE

POSITION_TABLES = ("identity_position", "engage_position")  # each: space, seq


def copy_identity(data_dir: Path, dest: Path) -> tuple[BackupFile, int] | None:
    """identity.db copied into `dest` (the backup's folder), with the lowest position its
    consumers (the graph, Engage) had read to; None when the data dir has no graph."""
    source = data_dir / SQLITE_FILE
    if not source.exists():
        return None
    position = snapshot_copy(source, dest / SQLITE_FILE, _lowest_position)
    size, sha = file_digest(dest / SQLITE_FILE)
    entry = BackupFile(
        path=SQLITE_FILE, kind="identity", restore_to=SQLITE_FILE, bytes=size, sha256=sha
    )
    return entry, position


def _lowest_position(db: sqlite3.Connection) -> int:
    positions = [
        int(seq)
        for table in POSITION_TABLES
        if db.execute(HAS_TABLE, (table,)).fetchone()
        for (seq,) in db.execute(f"SELECT seq FROM {table}")
    ]
    return min(positions, default=0)
