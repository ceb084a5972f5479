"""The `profiles` target: the subject's profiles out of the identity tables.

A subject's profile is the one its user id (or anonymous id) resolves to, plus every profile
merged into it (`merged_into` always names the live profile, so one level finds them all). All
of its rows go: the profile, its identities (email, device ids: they are the person too), its
traits, its index of events, and the merges it won or lost.

Each space is changed in the identity tables' own transaction for that space
(`IdentityDb.transaction`), the one an identity step holds while it reads the log and writes:
so a step either committed before (and its rows are deleted here) or reads the log after the
log leg (and finds none of the subject's events). The SQL is privacy's, on the tables
`identity/tables.py` defines; the identity package is not changed for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from sluice.config import Settings
from sluice.identity.tables import SQLITE_FILE, IdentityDb, has_table, open_identity_db
from sluice.privacy.targets.base import Subject, TargetOutcome

ID_TYPES = {"USER_ID": "user_id", "ANONYMOUS_ID": "anonymous_id"}
# Rows by profile: (table, column holding the profile id).
_BY_PROFILE = (
    ("identities", "profile_id"),
    ("profile_traits", "profile_id"),
    ("profile_events", "profile_id"),
    ("merges", "loser"),
    ("merges", "winner"),
    ("profiles", "profile_id"),
)
# Engage's rows by profile (`engage/tables.py`), present once Engage has run.
_ENGAGE_BY_PROFILE = (
    ("engage_states", "profile_id"),
    ("computed_values", "profile_id"),
    ("audience_members", "profile_id"),
)
_CHUNK = 500


class ProfilesTarget:
    name = "profiles"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def delete(self, regulation_id: str, subject: Subject) -> TargetOutcome:
        return await asyncio.to_thread(self._delete, subject)

    def _delete(self, subject: Subject) -> TargetOutcome:
        id_type = ID_TYPES.get(subject.type)
        if id_type is None:
            return TargetOutcome(self.name, "NOT_SUPPORTED", f"profiles have no {subject.type}")
        if not self.settings.database_url and not (self.settings.data_dir / SQLITE_FILE).exists():
            return TargetOutcome(self.name, "FINISHED", "no identity tables (identity never ran)")
        db = open_identity_db(self.settings.data_dir, self.settings.database_url)
        try:
            if db.dialect == "sqlite":  # overwrite what is deleted, not only unlink it
                db.execute("PRAGMA secure_delete=ON")
            removed = 0
            for (space,) in db.execute("SELECT space FROM identity_position ORDER BY space"):
                with db.transaction(str(space)):
                    removed += _delete_in_space(db, str(space), id_type, subject.ids)
            if db.dialect == "sqlite":  # the WAL's frames are old copies of the pages
                busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)")[0][0]
                if busy:
                    return TargetOutcome(
                        self.name, "RETRYING", "identity.db's WAL could not be truncated yet",
                        removed,
                    )  # fmt: skip
        finally:
            db.close()
        return TargetOutcome(self.name, "FINISHED", f"{removed} row(s) deleted", removed)


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _delete_in_space(db: IdentityDb, space: str, id_type: str, ids: Sequence[str]) -> int:
    profiles: set[str] = set()
    for chunk in _chunks(ids):
        test, params = db.in_list(chunk)
        rows = db.execute(
            "SELECT profile_id FROM identities"
            f" WHERE space = ? AND id_type = ? AND id_value {test}",
            [space, id_type, *params],
        )
        profiles.update(str(p) for (p,) in rows)
    if not profiles:
        return 0
    live = sorted(profiles)
    for chunk in _chunks(live):
        test, params = db.in_list(chunk)
        rows = db.execute(
            f"SELECT profile_id FROM profiles WHERE space = ? AND merged_into {test}",
            [space, *params],
        )
        profiles.update(str(p) for (p,) in rows)
    removed = _delete_pending_engage_events(db, space, ids)
    by_profile = _BY_PROFILE + tuple(t for t in _ENGAGE_BY_PROFILE if has_table(db, t[0]))
    for chunk in _chunks(sorted(profiles)):
        test, params = db.in_list(chunk)
        for table, column in by_profile:
            before = db.execute(
                f"SELECT count(*) FROM {table} WHERE space = ? AND {column} {test}",
                [space, *params],
            )
            db.execute(f"DELETE FROM {table} WHERE space = ? AND {column} {test}", [space, *params])
            removed += int(before[0][0])
    return removed


def _delete_pending_engage_events(db: IdentityDb, space: str, ids: Sequence[str]) -> int:
    """Engage's outbox rows naming the subject: sent later they would put the id back in the log."""
    if not has_table(db, "engage_outbox"):
        return 0
    needles = [msgspec.json.encode(value).decode() for value in ids]
    rows = db.execute("SELECT ord, payload FROM engage_outbox WHERE space = ?", [space])
    doomed = [o for o, payload in rows if any(n in str(payload) for n in needles)]
    for ord_ in doomed:
        db.execute("DELETE FROM engage_outbox WHERE space = ? AND ord = ?", [space, ord_])
    return len(doomed)
