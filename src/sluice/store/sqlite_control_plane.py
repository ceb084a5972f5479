"""The control plane in the SQLite store: the workspace's objects (sources, destinations,
warehouses, tracking plans) as JSON documents, and the version that tells collectors to reload.

Apart from the log (sqlite.py, sqlite_append.py): a concept of its own, with its own tables
(`config`, and its version in `meta`), written when the workspace is applied and read again by
every process when the version moves. Mixed into `SqliteStore`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.store.base_event_store import ConfigObject, SourceRow
from sluice.store.common import source_rows

CONTROL_PLANE_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('config_version', 0);
"""


class SqliteControlPlane:
    """Mixed into `SqliteStore`: uses its connection, its lock and its write transactions."""

    _db: sqlite3.Connection
    _lock: threading.Lock

    if TYPE_CHECKING:  # SqliteStore's, in the MRO: no stub to shadow it

        def _transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any: ...

    def config_version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'config_version'").fetchone()
        return int(row[0]) if row else 0

    def list_config(self, kind: str | None = None) -> list[ConfigObject]:
        sql = "SELECT kind, id, body FROM config"
        params: tuple[str, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY kind, id", params).fetchall()
        return [ConfigObject(k, i, bytes(b)) for k, i, b in rows]

    def replace_config(self, objects: Iterable[ConfigObject]) -> None:
        rows = [(o.kind, o.id, o.body) for o in objects]
        self._write_config(rows, replace=True)

    def put_config(self, obj: ConfigObject) -> None:
        self._write_config([(obj.kind, obj.id, obj.body)], replace=False)

    def _write_config(self, rows: list[tuple[str, str, bytes]], replace: bool) -> None:
        def write(db: sqlite3.Connection) -> None:
            if replace:
                db.execute("DELETE FROM config")
            db.executemany(
                "INSERT INTO config (kind, id, body) VALUES (?, ?, ?)"
                " ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                rows,
            )
            db.execute("UPDATE meta SET value = value + 1 WHERE key = 'config_version'")

        self._transaction(write)

    def sources(self) -> Sequence[SourceRow]:
        return source_rows(self.list_config("source"))
