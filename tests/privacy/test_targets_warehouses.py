"""Deleting a user from real DuckDB and PostgreSQL warehouses that Sluice's loader filled.

After a deletion, every value of every table (Sluice's own included) is searched as text for the
user's id and email: none may hold them, and the other users' rows are all still there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from psycopg import sql
from targets_kit import OTHERS, SUBJECT, SUBJECT_EMAIL, load, seed, texts_holding

from sluice.config import Settings
from sluice.privacy.targets.base import Subject, TargetOutcome
from sluice.privacy.targets.external import external_targets
from sluice.privacy.targets.warehouses import DuckDBWarehouseTarget, PostgresWarehouseTarget
from sluice.store.sqlite import SqliteStore
from sluice.workspace.model import Warehouse, Workspace

ALICE = Subject("USER_ID", (SUBJECT,))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "log.db")
    try:
        yield s
    finally:
        s.close()


def run(target: Any, subject: Subject = ALICE, regulation: str = "reg-1") -> TargetOutcome:
    outcome: TargetOutcome = asyncio.run(target.delete(regulation, subject))
    return outcome


# --- DuckDB ------------------------------------------------------------------------------------


def duck_search(path: Path, needle: str) -> list[str]:
    """Every column of every table of the file (`_sluice` too) read as text, searched."""
    with duckdb.connect(str(path), read_only=True) as db:
        columns = db.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_catalog = current_database()"
        ).fetchall()
        found = []
        for schema, table, column in columns:
            ((n,),) = db.execute(
                f'SELECT count(*) FROM "{schema}"."{table}"'
                f' WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                [f"%{needle}%"],
            ).fetchall()
            found.append((schema, table, column, n))
    return texts_holding(found)


def duck_rows_of(path: Path, user: str) -> dict[str, int]:
    """Rows per `schema.table` holding the user in user_id (or id, in users)."""
    with duckdb.connect(str(path), read_only=True) as db:
        tables = db.execute(
            "SELECT table_schema, table_name, list(column_name) FROM information_schema.columns"
            " WHERE table_schema = 'web' GROUP BY 1, 2"
        ).fetchall()
        counts = {}
        for schema, table, columns in tables:
            key = "user_id" if "user_id" in columns else "id"
            ((n,),) = db.execute(
                f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{key}" = ?', [user]
            ).fetchall()
            counts[f"{schema}.{table}"] = n
    return counts


def test_duckdb_warehouse_loses_every_trace_of_the_user(store: SqliteStore, tmp_path: Path) -> None:
    seed(store)
    path = tmp_path / "main.duckdb"
    report = load(
        store, tmp_path, {"id": "main", "type": "duckdb", "settings": {"path": str(path)}}
    )
    assert report.discards == 1  # alice's text `total`, kept in _sluice.discards
    assert duck_search(path, SUBJECT)  # the user is everywhere before
    others = {u: duck_rows_of(path, u) for u in OTHERS}
    assert sum(duck_rows_of(path, SUBJECT).values()) == 10  # 7 calls, 2 event tables, users

    outcome = run(DuckDBWarehouseTarget("main", path))

    assert outcome.status == "FINISHED", outcome
    assert outcome.target == "warehouse:main"
    assert outcome.removed == 10
    assert duck_search(path, SUBJECT) == []
    assert duck_search(path, SUBJECT_EMAIL) == []
    assert {u: duck_rows_of(path, u) for u in OTHERS} == others
    # Not even in the file's free blocks: the file was rewritten (no marker or copy left).
    assert SUBJECT.encode() not in path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("main", ".main"))) == [
        "main.duckdb"
    ]
    again = run(DuckDBWarehouseTarget("main", path))  # a second run (after a crash) is fine
    assert (again.status, again.removed) == ("FINISHED", 0)


def test_duckdb_rewrite_interrupted_runs_again(store: SqliteStore, tmp_path: Path) -> None:
    """Rows deleted but the file not yet rewritten (a crash): the marker makes the next call
    rewrite it, although it finds nothing more to delete."""
    seed(store)
    path = tmp_path / "main.duckdb"
    load(store, tmp_path, {"id": "main", "type": "duckdb", "settings": {"path": str(path)}})
    db = duckdb.connect(str(path))
    try:
        DuckDBWarehouseTarget._erase(db, ALICE)
        db.execute("CHECKPOINT")
    finally:
        db.close()
    (tmp_path / "main.duckdb.erase-pending").touch()
    outcome = run(DuckDBWarehouseTarget("main", path))
    assert (outcome.status, outcome.removed) == ("FINISHED", 0)
    assert not (tmp_path / "main.duckdb.erase-pending").exists()
    assert SUBJECT.encode() not in path.read_bytes()
    assert sum(duck_rows_of(path, OTHERS[0]).values()) > 0


def test_duckdb_reload_after_deletion_keeps_counts_and_loads_new_events(
    store: SqliteStore, tmp_path: Path
) -> None:
    """The loader's digests stay consistent: the next load adds new rows, brings none back."""
    seed(store)
    path = tmp_path / "main.duckdb"
    body = {"id": "main", "type": "duckdb", "settings": {"path": str(path)}}
    load(store, tmp_path, body)
    run(DuckDBWarehouseTarget("main", path))
    seed(store)  # more events of everyone, the user's included (no suppression here)
    load(store, tmp_path, body)
    assert sum(duck_rows_of(path, SUBJECT).values()) == 10  # the new ones only


def test_duckdb_file_held_by_a_load_answers_retrying(store: SqliteStore, tmp_path: Path) -> None:
    seed(store)
    path = tmp_path / "main.duckdb"
    load(store, tmp_path, {"id": "main", "type": "duckdb", "settings": {"path": str(path)}})
    held = duckdb.connect(str(path))  # as a loader in this very process holds it
    try:
        outcome = run(DuckDBWarehouseTarget("main", path))
    finally:
        held.close()
    assert outcome.status == "RETRYING", outcome
    assert "open in another process or connection" in outcome.detail
    assert sum(duck_rows_of(path, SUBJECT).values()) == 10  # untouched
    assert run(DuckDBWarehouseTarget("main", path)).status == "FINISHED"


def test_default_warehouse_and_anonymous_and_object_subjects(
    store: SqliteStore, tmp_path: Path
) -> None:
    seed(store)
    load(store, tmp_path, {"id": "default", "type": "duckdb"})
    (target,) = external_targets(Workspace(), Settings(data_dir=tmp_path), store=store)
    assert target.name == "warehouse:default"
    outcome = run(target, Subject("ANONYMOUS_ID", (f"anon-{SUBJECT}",)))
    assert outcome.status == "FINISHED"
    assert outcome.removed == 9  # every row of hers but `users`, which has no anonymous_id
    assert run(target, Subject("OBJECT_ID", ("o-1",))).status == "NOT_SUPPORTED"


def test_a_missing_file_is_nothing_to_delete(tmp_path: Path) -> None:
    outcome = run(DuckDBWarehouseTarget("main", tmp_path / "never.duckdb"))
    assert outcome.status == "FINISHED"
    assert not (tmp_path / "never.duckdb").exists()


# --- PostgreSQL --------------------------------------------------------------------------------


def pg_search(url: str, needle: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        found = []
        for schema, table, column in columns:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}::text LIKE %s").format(
                    sql.Identifier(schema, table), sql.Identifier(column)
                ),
                (f"%{needle}%",),
            ).fetchone()
            assert row is not None
            found.append((schema, table, column, int(row[0])))
    return texts_holding(found)


def pg_rows(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'web'"
        ).fetchall()
        counts = {}
        for (table,) in tables:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("web", table))
            ).fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


def test_postgres_warehouse_loses_every_trace_of_the_user(
    store: SqliteStore, tmp_path: Path, pg_url: str
) -> None:
    seed(store)
    body = {"id": "pgw", "type": "postgres", "settings": {"url": pg_url}}
    load(store, tmp_path, body)
    before = pg_rows(pg_url)
    assert pg_search(pg_url, SUBJECT)
    (target,) = external_targets(
        Workspace(warehouses=[Warehouse(id="pgw", type="postgres", settings={"url": pg_url})]),
        Settings(data_dir=tmp_path),
        store=store,
    )

    outcome = run(target)

    assert outcome.status == "FINISHED", outcome
    assert outcome.removed == 10
    assert pg_search(pg_url, SUBJECT) == []
    assert pg_search(pg_url, SUBJECT_EMAIL) == []
    after = pg_rows(pg_url)
    assert sum(before.values()) - sum(after.values()) == 10
    assert after["users"] == 2 and after["identifies"] == 2 and after["tracks"] == 4
    assert run(target).status == "FINISHED"  # twice is fine


def test_postgres_waits_for_loads_to_pass_the_fence(
    store: SqliteStore, tmp_path: Path, pg_url: str
) -> None:
    """Events in the log the warehouse has not loaded yet: a load may be reading them, so the
    deletion is not final until the warehouse's position passes where the log ended."""
    seed(store)
    body = {"id": "pgw", "type": "postgres", "settings": {"url": pg_url}}
    load(store, tmp_path, body)
    seed(store)  # in the log, not loaded yet (as if a load were planning them now)
    fence = store.last_seq()
    target = PostgresWarehouseTarget("pgw", pg_url, store.last_seq)

    first = run(target)
    assert first.status == "RETRYING", first
    assert f"waiting for its loads to pass log position {fence} (it is at 21)" in first.detail
    assert first.removed == 10

    load(store, tmp_path, body)  # the load commits the user's later rows
    seed(store)  # the log moves on: the fence recorded at the first call holds
    second = run(target)
    assert second.status == "FINISHED", second
    assert second.removed == 10
    assert pg_search(pg_url, SUBJECT) == []


def test_postgres_deletion_waits_for_a_load_committing(
    store: SqliteStore, tmp_path: Path, pg_url: str
) -> None:
    """A load holding the loader's lock (it is committing): the deletion waits for it, so that
    rows it commits are deleted too, not put back after."""
    seed(store)
    load(store, tmp_path, {"id": "pgw", "type": "postgres", "settings": {"url": pg_url}})
    target = PostgresWarehouseTarget("pgw", pg_url, store.last_seq)
    with psycopg.connect(pg_url) as loader:
        loader.execute("SELECT pg_advisory_xact_lock(hashtext('pgw'))")  # as load() does
        result: list[TargetOutcome] = []
        thread = threading.Thread(target=lambda: result.append(run(target)))
        thread.start()
        with psycopg.connect(pg_url, autocommit=True) as watcher:
            deadline = time.monotonic() + 60
            waiting = (
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            while watcher.execute(waiting).fetchone() != (1,):
                assert time.monotonic() < deadline, "the deletion never waited for the lock"
                time.sleep(0.05)
            # The committing load adds one more row of hers while the deletion waits.
            loader.execute(
                "INSERT INTO web.tracks (id, user_id, received_at, uuid_ts)"
                " VALUES ('late-1', %s, now(), now())",
                (SUBJECT,),
            )
        assert result == []  # still waiting
        loader.commit()
    thread.join(60)
    (outcome,) = result
    assert outcome.status == "FINISHED", outcome
    assert outcome.removed == 11  # the late row too
    assert pg_search(pg_url, SUBJECT) == []


def test_postgres_unreachable_answers_retrying_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://loader:s3cret-pw@127.0.0.1:1/warehouse"
    outcome = run(PostgresWarehouseTarget("pgw", url, lambda: 0))
    assert outcome.status == "RETRYING"
    assert "cannot connect" in outcome.detail
    assert "s3cret-pw" not in outcome.detail
