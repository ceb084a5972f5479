"""Profiles Sync: the identity graph's tables in a warehouse, in Segment's shape.

A warehouse with `settings: {profiles: true}` (DuckDB or PostgreSQL) gets, in the schema
`profiles`, after each load of its events, Segment's Profiles Sync tables for the user profiles
of the identity graph (identity/):

    raw, append-only       id_graph_updates, external_id_mapping_updates, profile_traits_updates
    materialized (current) id_graph, profile_merges, user_identifiers, user_traits

Exactly once without a position: a load reads a consistent snapshot of the identity tables,
stages it in the warehouse, and in ONE warehouse transaction appends to each `_updates` table
the rows where the snapshot differs from the materialized tables (a new or re-pointed profile,
a new identifier, a new or changed trait), then replaces the materialized tables by the
snapshot. The materialized tables are what the next load compares with, so a load that crashes
rolls back whole and the next one appends the same rows; a load with nothing new appends
nothing. Its cost is the graph's size at every load (a snapshot, then set-based SQL).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from sluice.identity.rules import USERS
from sluice.identity.tables import IdentityDb
from sluice.warehouse.base import WarehouseUnavailable
from sluice.warehouse.factory import WarehouseConfig, duckdb_path
from sluice.workspace.model_checks import profiles_setting_problem

log = logging.getLogger(__name__)
PROFILES_SETTING = "profiles"
SCHEMA = "profiles"


def profiles_enabled(config: WarehouseConfig) -> bool:
    return config.settings.get(PROFILES_SETTING) is True


@dataclass(slots=True)
class Snapshot:
    """The user profiles of one space, as the warehouse tables need them."""

    # segment_id, canonical_segment_id, triggering event id, timestamp, seq
    graph: list[tuple[Any, ...]] = field(default_factory=list)
    # canonical_segment_id, type, value, first event id, source id, timestamp
    identifiers: list[tuple[Any, ...]] = field(default_factory=list)
    # canonical_segment_id, name, value, source id, timestamp, seq
    traits: list[tuple[Any, ...]] = field(default_factory=list)
    position: int = 0  # the identity graph's position in the log


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _trait_text(value: str) -> str:
    """A trait's JSON as the warehouse's varchar: a string as itself, anything else as JSON."""
    decoded = msgspec.json.decode(value)
    return decoded if isinstance(decoded, str) else value


def read_snapshot(db: IdentityDb, space: str) -> Snapshot:
    """The user profiles of `space` in one consistent read of the identity tables."""
    snap = Snapshot()
    with db.snapshot():
        rows = db.execute("SELECT seq FROM identity_position WHERE space = ?", [space])
        snap.position = int(rows[0][0]) if rows else 0
        merges = {
            r[0]: (r[1], r[2], r[3], r[4])  # loser → winner, message id, at_ms, seq
            for r in db.execute(
                "SELECT loser, winner, message_id, at_ms, seq FROM merges WHERE space = ?",
                [space],
            )
        }
        for profile, root, message_id, created_ms, first_seq in db.execute(
            "SELECT profile_id, COALESCE(merged_into, profile_id), first_message_id,"
            " created_ms, first_seq FROM profiles WHERE space = ? AND collection = ?",
            [space, USERS],
        ):
            trigger, at_ms, seq = message_id, created_ms, first_seq
            hop = profile
            # A merged profile points at its root since the merge whose winner is the root
            # (its own, or a later one of a profile it had joined: Segment's recursive rows).
            while hop != root and hop in merges:
                winner, trigger, at_ms, seq = merges[hop]
                hop = winner
            snap.graph.append((profile, root, trigger, _ts(at_ms), seq))
        snap.identifiers = [
            (r[0], r[1], r[2], r[3], r[4], _ts(r[5]))
            for r in db.execute(
                "SELECT profile_id, id_type, id_value, first_message_id, source_id,"
                " first_seen_ms FROM identities WHERE space = ? AND collection = ?",
                [space, USERS],
            )
        ]
        snap.traits = [
            (r[0], r[1], _trait_text(r[2]), r[3], _ts(r[4]), r[5])
            for r in db.execute(
                "SELECT t.profile_id, t.key, t.value, t.source_id, t.updated_ms, t.seq"
                " FROM profile_traits AS t JOIN profiles AS p ON p.space = t.space"
                " AND p.profile_id = t.profile_id WHERE t.space = ? AND p.collection = ?",
                [space, USERS],
            )
        ]
    return snap


_TS = "{ts}"
_DDL = [
    "CREATE SCHEMA IF NOT EXISTS profiles",
    """CREATE TABLE IF NOT EXISTS profiles.id_graph_updates (
        segment_id VARCHAR NOT NULL, canonical_segment_id VARCHAR NOT NULL,
        triggering_event_type VARCHAR, triggering_event_id VARCHAR, timestamp {ts},
        seq BIGINT, received_at {ts}, uuid_ts {ts})""",
    """CREATE TABLE IF NOT EXISTS profiles.external_id_mapping_updates (
        id VARCHAR NOT NULL, segment_id VARCHAR NOT NULL, external_id_hash VARCHAR,
        external_id_type VARCHAR NOT NULL, external_id_value VARCHAR NOT NULL,
        triggering_event_id VARCHAR, triggering_event_type VARCHAR,
        triggering_event_name VARCHAR, triggering_event_source_id VARCHAR,
        timestamp {ts}, received_at {ts}, seq BIGINT, uuid_ts {ts})""",
    """CREATE TABLE IF NOT EXISTS profiles.profile_traits_updates (
        canonical_segment_id VARCHAR NOT NULL, segment_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL, value VARCHAR, source_id VARCHAR, timestamp {ts},
        seq BIGINT, received_at {ts}, uuid_ts {ts})""",
    """CREATE TABLE IF NOT EXISTS profiles.id_graph (
        segment_id VARCHAR NOT NULL, canonical_segment_id VARCHAR NOT NULL,
        timestamp {ts}, seq BIGINT)""",
    """CREATE TABLE IF NOT EXISTS profiles.profile_merges (
        canonical_segment_id VARCHAR NOT NULL, segment_id VARCHAR NOT NULL, seq BIGINT,
        received_at {ts}, timestamp {ts}, uuid_ts {ts})""",
    """CREATE TABLE IF NOT EXISTS profiles.user_identifiers (
        canonical_segment_id VARCHAR NOT NULL, type VARCHAR NOT NULL, value VARCHAR NOT NULL,
        seq BIGINT, received_at {ts}, timestamp {ts}, uuid_ts {ts},
        first_message_id VARCHAR, source_id VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS profiles.user_traits (
        canonical_segment_id VARCHAR NOT NULL, name VARCHAR NOT NULL, value VARCHAR,
        seq BIGINT, received_at {ts}, timestamp {ts}, uuid_ts {ts}, source_id VARCHAR)""",
]
_STAGE_DDL = [
    """CREATE TEMP TABLE ps_graph (segment_id VARCHAR, canonical_segment_id VARCHAR,
        trigger_id VARCHAR, timestamp {ts}, seq BIGINT)""",
    """CREATE TEMP TABLE ps_ids (canonical_segment_id VARCHAR, type VARCHAR, value VARCHAR,
        first_message_id VARCHAR, source_id VARCHAR, timestamp {ts})""",
    """CREATE TEMP TABLE ps_traits (canonical_segment_id VARCHAR, name VARCHAR, value VARCHAR,
        source_id VARCHAR, timestamp {ts}, seq BIGINT)""",
]
# The differences appended to the raw tables ($1: uuid_ts, the load's time), then the
# materialized tables replaced by the snapshot.
_APPLY = [
    """INSERT INTO profiles.id_graph_updates SELECT s.segment_id, s.canonical_segment_id, NULL,
        s.trigger_id, s.timestamp, s.seq, s.timestamp, $1 FROM ps_graph AS s
        LEFT JOIN profiles.id_graph AS g ON g.segment_id = s.segment_id
        WHERE g.segment_id IS NULL OR g.canonical_segment_id <> s.canonical_segment_id""",
    """INSERT INTO profiles.external_id_mapping_updates SELECT
        md5(s.type || ':' || s.value), s.canonical_segment_id,
        md5(s.value), s.type, s.value, s.first_message_id, NULL, NULL, s.source_id,
        s.timestamp, s.timestamp, NULL, $1 FROM ps_ids AS s
        LEFT JOIN profiles.user_identifiers AS u ON u.type = s.type AND u.value = s.value
        WHERE u.type IS NULL""",
    """INSERT INTO profiles.profile_traits_updates SELECT s.canonical_segment_id,
        s.canonical_segment_id, s.name, s.value, s.source_id, s.timestamp, s.seq,
        s.timestamp, $1 FROM ps_traits AS s
        LEFT JOIN profiles.user_traits AS u ON u.canonical_segment_id = s.canonical_segment_id
        AND u.name = s.name
        WHERE u.name IS NULL OR u.seq <> s.seq OR u.value IS DISTINCT FROM s.value""",
    "DELETE FROM profiles.id_graph",
    """INSERT INTO profiles.id_graph SELECT segment_id, canonical_segment_id, timestamp, seq
        FROM ps_graph""",
    "DELETE FROM profiles.profile_merges",
    """INSERT INTO profiles.profile_merges SELECT canonical_segment_id, segment_id, seq,
        timestamp, timestamp, $1 FROM ps_graph""",
    "DELETE FROM profiles.user_identifiers",
    """INSERT INTO profiles.user_identifiers SELECT canonical_segment_id, type, value, NULL,
        timestamp, timestamp, $1, first_message_id, source_id FROM ps_ids""",
    "DELETE FROM profiles.user_traits",
    """INSERT INTO profiles.user_traits SELECT canonical_segment_id, name, value, seq,
        timestamp, timestamp, $1, source_id FROM ps_traits""",
]


@dataclass(slots=True)
class SyncReport:
    profiles: int = 0  # live and merged user profiles
    position: int = 0  # the identity graph's position the tables reflect
    appended: dict[str, int] = field(default_factory=dict)  # raw table → rows appended


class _Target:
    """A warehouse connection that can run the statements above."""

    ts = ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def scalar(self, sql: str) -> int:
        raise NotImplementedError

    def stage(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _DuckTarget(_Target):
    ts = "TIMESTAMPTZ"

    def __init__(self, path: Path) -> None:
        import duckdb

        try:
            self.conn = duckdb.connect(str(path))
        except duckdb.Error as exc:
            raise WarehouseUnavailable(f"cannot open DuckDB warehouse {path}: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params) if params else None)

    def scalar(self, sql: str) -> int:
        row = self.conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def stage(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]

        if not rows:
            return
        description = self.conn.execute(f"SELECT * FROM {table} LIMIT 0").description or []
        names = [column[0] for column in description]
        data = pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})
        self.conn.register("ps_rows", data)
        try:
            self.conn.execute(f"INSERT INTO {table} SELECT * FROM ps_rows")
        finally:
            self.conn.unregister("ps_rows")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class _PostgresTarget(_Target):
    ts = "TIMESTAMPTZ"

    def __init__(self, url: str) -> None:
        import psycopg

        try:
            self.conn: Any = psycopg.connect(url, autocommit=True, application_name="sluice-ps")
        except psycopg.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to the PostgreSQL warehouse: {exc}") from (
                exc
            )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql.replace("$1", "%s"), list(params) if params else None)

    def scalar(self, sql: str) -> int:
        row = self.conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def stage(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            # One sync at a time per warehouse: two would compare with the same tables.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('sluice-profiles-sync'))")
            yield

    def close(self) -> None:
        self.conn.close()


def _open_target(config: WarehouseConfig, data_dir: Path) -> _Target:
    if config.type == "duckdb":
        return _DuckTarget(duckdb_path(config, data_dir))
    if config.type == "postgres":
        url = config.settings.get("url")
        if not isinstance(url, str) or not url:
            raise WarehouseUnavailable(f"warehouse {config.id!r} is PostgreSQL but has no url")
        return _PostgresTarget(url)
    raise WarehouseUnavailable(
        f"warehouse {config.id!r}: {profiles_setting_problem(config.type, True)}"
    )


def sync_profiles(
    config: WarehouseConfig, data_dir: Path, db: IdentityDb, space: str
) -> SyncReport:
    """Bring the warehouse's Profiles Sync tables up to the identity graph (one transaction)."""
    snap = read_snapshot(db, space)
    report = SyncReport(len(snap.graph), snap.position)
    target = _open_target(config, data_dir)
    try:
        ts = target.ts
        uuid_ts = datetime.now(UTC)
        with target.transaction():
            for statement in _DDL:
                target.execute(statement.replace(_TS, ts))
            for statement in _STAGE_DDL:
                target.execute(statement.replace(_TS, ts))
            target.stage("ps_graph", snap.graph)
            target.stage("ps_ids", snap.identifiers)
            target.stage("ps_traits", snap.traits)
            for statement in _APPLY:
                params = [uuid_ts] if "$1" in statement else []
                table = statement.split()[2].removeprefix("profiles.")
                if table.endswith("_updates"):
                    before = target.scalar(f"SELECT count(*) FROM profiles.{table}")
                    target.execute(statement, params)
                    after = target.scalar(f"SELECT count(*) FROM profiles.{table}")
                    report.appended[table] = after - before
                else:
                    target.execute(statement, params)
            for stage in ("ps_graph", "ps_ids", "ps_traits"):
                target.execute(f"DROP TABLE {stage}")
    finally:
        target.close()
    return report
