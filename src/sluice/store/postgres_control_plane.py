"""The control plane in the PostgreSQL store: the workspace's objects (sources, destinations,
warehouses, tracking plans) as JSON documents, and the version that tells every node to reload.

Apart from the log (postgres.py, postgres_append.py): a concept of its own, with its own tables
(`config`, and its version in `meta`), written when the workspace is applied and read again by
every node when the version moves. Mixed into `PostgresStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sluice.store.base_event_store import ConfigObject, SourceRow
from sluice.store.common import source_rows
from sluice.store.postgres_connection import PostgresConnections


class PostgresControlPlane(PostgresConnections):
    """Mixed into `PostgresStore`."""

    def config_version(self) -> int:
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'config_version'").fetchone()
        return int(row[0]) if row else 0

    def list_config(self, kind: str | None = None) -> list[ConfigObject]:
        query = "SELECT kind, id, body FROM config"
        params: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = %s"
            params = (kind,)
        with self._connection() as conn:
            rows = conn.execute(query + " ORDER BY kind, id", params).fetchall()
        return [ConfigObject(k, i, bytes(b)) for k, i, b in rows]

    def replace_config(self, objects: Iterable[ConfigObject]) -> None:
        self._write_config([(o.kind, o.id, o.body) for o in objects], replace=True)

    def put_config(self, obj: ConfigObject) -> None:
        self._write_config([(obj.kind, obj.id, obj.body)], replace=False)

    def _write_config(self, rows: list[tuple[str, str, bytes]], replace: bool) -> None:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            # The version row first: concurrent writers of the workspace queue on it.
            cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'config_version'")
            if replace:
                cur.execute("DELETE FROM config")
            cur.executemany(
                "INSERT INTO config (kind, id, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                rows,
            )

    def sources(self) -> Sequence[SourceRow]:
        return source_rows(self.list_config("source"))
