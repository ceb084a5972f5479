"""Privacy regulations and suppressions in the store: what was asked, where each leg stands.

Three tables, one SQL text for both backends (as the retry set's, `store/retry_set.py`):

    regulations       id → type, subject type, subject ids (JSON; emptied once the regulation
                      is over, so a finished deletion keeps no copy of the ids it deleted),
                      how many, the source it is scoped to, overall status, times, not_before
                      (the runner waits for the suppression to reach every collector first)
    regulation_legs   (regulation, target) → status, detail, removed, updated: one row per
                      place a deletion reaches, written as each leg finishes (resumable)
    suppressions      sha256 of a user id (privacy/suppression.py: never the id in clear) →
                      the regulation that suppressed it; the collector reloads them with the
                      workspace: a change bumps `config_version` in the same transaction, so
                      every HTTP worker sees it on its next poll (1 s)

The log's own erasure (events, retry set, parked, rejections) is here too: it is SQL on the
store's tables. The rest of a deletion (archive files, profiles, warehouses) is `privacy/`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from sluice.store.base_privacy import LegRow, RegulationRow
from sluice.store.dialect import Cursor, Dialect

REGULATIONS_TABLES_SQLITE = """
CREATE TABLE IF NOT EXISTS regulations (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_ids TEXT NOT NULL,
    subject_count INTEGER NOT NULL,
    source_id TEXT,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    not_before INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS regulation_legs (
    regulation_id TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    removed INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (regulation_id, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions (
    subject_hash TEXT PRIMARY KEY,
    regulation_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

REGULATIONS_TABLES_POSTGRES = """
CREATE TABLE IF NOT EXISTS regulations (
    id text COLLATE "C" PRIMARY KEY,
    type text NOT NULL,
    subject_type text NOT NULL,
    subject_ids text NOT NULL,
    subject_count bigint NOT NULL,
    source_id text,
    status text NOT NULL,
    detail text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint,
    not_before bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS regulation_legs (
    regulation_id text COLLATE "C" NOT NULL,
    target text COLLATE "C" NOT NULL,
    status text NOT NULL,
    detail text NOT NULL,
    removed bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (regulation_id, target)
);
CREATE TABLE IF NOT EXISTS suppressions (
    subject_hash text COLLATE "C" PRIMARY KEY,
    regulation_id text NOT NULL,
    created_at bigint NOT NULL
);
"""

# The statuses a regulation is over in: the runner no longer looks at it.
DONE_STATUSES = ("FINISHED", "FAILED", "PARTIAL_SUCCESS", "INVALID", "NOT_SUPPORTED")
_COLUMNS = (
    "id, type, subject_type, subject_ids, subject_count, source_id, status, detail,"
    " created_at, updated_at, finished_at, not_before"
)
_BUMP_CONFIG = "UPDATE meta SET value = value + 1 WHERE key = 'config_version'"
# Tables of the store that hold whole events, and the key of a row in each.
ERASABLE_TABLES: dict[str, tuple[str, ...]] = {
    "events": ("seq",),
    "retry_set": ("destination", "seq", "action"),
    "parked": ("id",),
    "rejections": ("id",),
}
# The column naming a row's source; parked rows do not say (NULL: every source's).
_SOURCE_COLUMN = {"events": "source_id", "retry_set": "source_id", "rejections": "source_id"}


def _row(r: Sequence[Any]) -> RegulationRow:
    ids = tuple(msgspec.json.decode(r[3], type=list[str]))
    return RegulationRow(
        str(r[0]), str(r[1]), str(r[2]), ids, int(r[4]), r[5], str(r[6]), str(r[7]),
        int(r[8]), int(r[9]), None if r[10] is None else int(r[10]), int(r[11]),
    )  # fmt: skip


class RegulationsState:
    """Mixed into both stores; they provide `_retry_read`, `_retry_write` and `_dialect`."""

    _dialect: Dialect
    # SQLite numbers a new row max(seq) + 1: deleting the newest event would hand its position
    # out again, behind every cursor that passed it. That store keeps the newest row until a
    # newer one exists (the log leg then says so and runs again).
    keeps_newest_event = False
    # SQLite leaves a deleted row's bytes in its page (and the page in the WAL) unless told to
    # overwrite them: set on the connection that erases (the runner's own), not on every one.
    _secure_delete_sql: str | None = None

    if TYPE_CHECKING:  # the store's own, earlier in its MRO: no stub to shadow them

        def _retry_read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def _retry_write(self, fn: Callable[[Cursor], Any]) -> Any: ...

    # --- regulations -----------------------------------------------------------------------
    def create_regulation(
        self, row: RegulationRow, *, suppress: Sequence[str] = (), unsuppress: Sequence[str] = ()
    ) -> None:
        """Record a regulation and (un)suppress user ids (given as their hashes), at once."""
        q = self._dialect

        def write(cur: Cursor) -> None:
            cur.execute(
                q(f"INSERT INTO regulations ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"),
                (
                    row.id, row.type, row.subject_type,
                    msgspec.json.encode(list(row.subject_ids)).decode(), row.subject_count,
                    row.source_id, row.status, row.detail, row.created_at_ms, row.updated_at_ms,
                    row.finished_at_ms, row.not_before_ms,
                ),
            )  # fmt: skip
            for key in suppress:
                cur.execute(
                    q(
                        "INSERT INTO suppressions (subject_hash, regulation_id, created_at)"
                        " VALUES (?, ?, ?) ON CONFLICT (subject_hash) DO NOTHING"
                    ),
                    (key, row.id, row.created_at_ms),
                )
            for key in unsuppress:
                cur.execute(q("DELETE FROM suppressions WHERE subject_hash = ?"), (key,))
            if suppress or unsuppress:
                cur.execute(_BUMP_CONFIG)  # every collector reloads the workspace

        self._retry_write(write)

    def regulation(self, regulation_id: str) -> RegulationRow | None:
        rows = self._retry_read(
            f"SELECT {_COLUMNS} FROM regulations WHERE id = ?", (regulation_id,)
        )
        return _row(rows[0]) if rows else None

    def regulations(
        self, *, status: str | None = None, source_id: str | None = None, limit: int = 100
    ) -> list[RegulationRow]:
        """Newest first."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if source_id is not None:
            where.append("source_id = ?")
            params.append(source_id)
        sql = f"SELECT {_COLUMNS} FROM regulations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._retry_read(sql + " ORDER BY created_at DESC, id LIMIT ?", (*params, limit))
        return [_row(r) for r in rows]

    def pending_regulations(self) -> list[RegulationRow]:
        """Regulations not over yet, oldest first (the runner's work)."""
        marks = ", ".join("?" for _ in DONE_STATUSES)
        rows = self._retry_read(
            f"SELECT {_COLUMNS} FROM regulations WHERE status NOT IN ({marks})"
            " ORDER BY created_at, id",
            DONE_STATUSES,
        )
        return [_row(r) for r in rows]

    def regulation_counts(self) -> dict[str, int]:
        """Regulations per status (metrics, `sluice status`)."""
        rows = self._retry_read("SELECT status, count(*) FROM regulations GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def set_regulation_status(
        self, regulation_id: str, status: str, detail: str, now_ms: int, *, over: bool = False
    ) -> None:
        """Set the overall status; `over` also forgets the subject ids (kept only as a count)."""
        q = self._dialect
        sql = "UPDATE regulations SET status = ?, detail = ?, updated_at = ?"
        params: list[Any] = [status, detail, now_ms]
        if over:
            sql += ", finished_at = ?, subject_ids = '[]'"
            params.append(now_ms)
        self._retry_write(
            lambda cur: cur.execute(q(sql + " WHERE id = ?"), (*params, regulation_id))
        )

    # --- legs ------------------------------------------------------------------------------
    def record_leg(self, leg: LegRow) -> None:
        q = self._dialect
        self._retry_write(
            lambda cur: cur.execute(
                q(
                    "INSERT INTO regulation_legs (regulation_id, target, status, detail, removed,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (regulation_id, target)"
                    " DO UPDATE SET status = excluded.status, detail = excluded.detail,"
                    " removed = regulation_legs.removed + excluded.removed,"
                    " updated_at = excluded.updated_at"
                ),
                (
                    leg.regulation_id,
                    leg.target,
                    leg.status,
                    leg.detail,
                    leg.removed,
                    leg.updated_at_ms,
                ),
            )
        )

    def regulation_legs(self, regulation_id: str) -> list[LegRow]:
        rows = self._retry_read(
            "SELECT regulation_id, target, status, detail, removed, updated_at"
            " FROM regulation_legs WHERE regulation_id = ? ORDER BY target",
            (regulation_id,),
        )
        return [
            LegRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5])) for r in rows
        ]

    # --- suppressions ----------------------------------------------------------------------
    def suppressed_keys(self) -> frozenset[str]:
        """The hashes of every suppressed user id (the collector's set)."""
        rows = self._retry_read("SELECT subject_hash FROM suppressions")
        return frozenset(str(k) for (k,) in rows)

    def suppressions(self, limit: int = 1000) -> list[tuple[str, str, int]]:
        """(user id hash, regulation id, created ms), newest first."""
        rows = self._retry_read(
            "SELECT subject_hash, regulation_id, created_at FROM suppressions"
            " ORDER BY created_at DESC, subject_hash LIMIT ?",
            (limit,),
        )
        return [(str(u), str(r), int(c)) for u, r, c in rows]

    # --- erasure of whole events from the store's tables ------------------------------------
    def scan_payloads(
        self, table: str, after: tuple[Any, ...] | None, limit: int
    ) -> list[tuple[tuple[Any, ...], str | None, bytes]]:
        """Rows of a table holding whole events, by key order after `after`: (key, source id
        or None when the table does not keep it, payload). `table` is one of ERASABLE_TABLES."""
        key = ERASABLE_TABLES[table]
        cols = ", ".join(key)
        where = ""
        params: list[Any] = []
        if after is not None:
            where = f" WHERE ({cols}) > ({', '.join('?' for _ in key)})"
            params.extend(after)
        rows = self._retry_read(
            f"SELECT {cols}, {_SOURCE_COLUMN.get(table, 'NULL')}, payload FROM {table}{where}"
            f" ORDER BY {cols} LIMIT ?",
            (*params, limit),
        )
        n = len(key)
        return [(tuple(r[:n]), r[n], bytes(r[n + 1])) for r in rows]

    def delete_rows(self, table: str, keys: Sequence[tuple[Any, ...]]) -> int:
        """Delete rows of a table by key; returns how many went."""
        if not keys:
            return 0
        q = self._dialect
        match = " AND ".join(f"{c} = ?" for c in ERASABLE_TABLES[table])
        if table == "events" and self.keeps_newest_event:
            match += " AND seq < (SELECT max(seq) FROM events)"
        sql = q(f"DELETE FROM {table} WHERE {match}")

        def write(cur: Cursor) -> int:
            if self._secure_delete_sql:
                cur.execute(self._secure_delete_sql)
            removed = 0
            for key in keys:
                done = cur.execute(sql, key)
                removed += max(getattr(done, "rowcount", 0), 0)
            return removed

        return int(self._retry_write(write))

    def erase_freed(self) -> bool:
        """Make erased rows unrecoverable from the store's own files where the backend keeps
        them around; False when that must be tried again later. SQLite: the WAL is
        checkpointed and truncated (its frames hold old page images); PostgreSQL keeps its
        files outside the data dir, and its dead rows go with VACUUM (docs/privacy.md)."""
        return True
