"""Engage's tables, beside the identity graph's (identity.db on SQLite, the store's PostgreSQL).

    engage_position   space → seq (never past the identity consumer's), clock_ms (the log's
                      logical clock), fingerprint (definitions + identity rules), replay_until
                      (no emission before it: a rebuild), sweep_after (the profile the
                      post-rebuild sweep has reached, NULL when none runs), counters
    engage_states     space, profile_id, key → state (states.py, JSON), expires_day (the day
                      a bucket leaves its window: what the tick re-evaluates)
    computed_values   space, trait_key, profile_id → value (JSON) last emitted, changed_seq
    audience_members  space, audience_key, profile_id → member (0/1) last emitted, changed_seq
    engage_outbox     space, ord → message_id, payload: events committed with the state that
                      made them, appended to the log after the commit and then deleted

Engage only reads the identity tables (profile_events, profiles, merges, profile_traits,
identities); it adds two indexes on them for its reads by seq.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sluice.identity.tables import IdentityDb

ENGAGE_TABLES = ("engage_states", "computed_values", "audience_members", "engage_outbox")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS engage_position (
        space TEXT PRIMARY KEY, seq BIGINT NOT NULL, clock_ms BIGINT NOT NULL,
        fingerprint TEXT NOT NULL, replay_until BIGINT NOT NULL DEFAULT 0, sweep_after TEXT,
        events BIGINT NOT NULL DEFAULT 0, emitted BIGINT NOT NULL DEFAULT 0,
        rebuilds BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS engage_states (
        space TEXT NOT NULL, profile_id TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
        expires_day BIGINT, PRIMARY KEY (space, profile_id, key)){rowid}""",
    """CREATE INDEX IF NOT EXISTS engage_states_expiry ON engage_states (expires_day, space)
        WHERE expires_day IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS computed_values (
        space TEXT NOT NULL, trait_key TEXT NOT NULL, profile_id TEXT NOT NULL,
        value TEXT NOT NULL, changed_seq BIGINT NOT NULL,
        PRIMARY KEY (space, profile_id, trait_key)){rowid}""",
    """CREATE TABLE IF NOT EXISTS audience_members (
        space TEXT NOT NULL, audience_key TEXT NOT NULL, profile_id TEXT NOT NULL,
        member INTEGER NOT NULL, changed_seq BIGINT NOT NULL,
        PRIMARY KEY (space, profile_id, audience_key)){rowid}""",
    """CREATE INDEX IF NOT EXISTS audience_members_key
        ON audience_members (audience_key, space, member)""",
    """CREATE TABLE IF NOT EXISTS engage_outbox (
        space TEXT NOT NULL, ord BIGINT NOT NULL, message_id TEXT NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (space, ord))""",
    # Reads of the identity graph's tables by seq (a step's events and merges).
    "CREATE INDEX IF NOT EXISTS engage_profile_events_seq ON profile_events (seq)",
    "CREATE INDEX IF NOT EXISTS engage_merges_seq ON merges (seq)",
]


def ensure_schema(db: IdentityDb) -> None:
    suffix = " WITHOUT ROWID" if db.dialect == "sqlite" else ""
    with transaction(db, "schema"):
        for statement in _SCHEMA:
            db.execute(statement.replace("{rowid}", suffix))


@contextlib.contextmanager
def transaction(db: IdentityDb, space: str) -> Iterator[None]:
    """A write transaction owning engage's position for the space. On PostgreSQL its own
    advisory lock (not the identity consumer's: the two run side by side); on SQLite the
    file's one writer, as for the identity consumer."""
    if db.dialect != "postgres":
        with db.transaction(space):
            yield
        return
    conn = db.conn  # type: ignore[attr-defined]
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sluice-engage:{space}",))
        yield
