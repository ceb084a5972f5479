"""Engage's position in the log, kept in its own table beside the states it produced, and the
identity graph's, which Engage never reads past."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.identity.tables import IdentityDb


@dataclass(slots=True)
class Position:
    seq: int
    clock_ms: int
    fingerprint: str
    replay_until: int
    sweep_after: str | None
    events: int
    emitted: int
    rebuilds: int

    @property
    def replaying(self) -> bool:
        return self.seq < self.replay_until


def read_position(db: IdentityDb, space: str) -> Position | None:
    rows = db.execute(
        "SELECT seq, clock_ms, fingerprint, replay_until, sweep_after, events, emitted,"
        " rebuilds FROM engage_position WHERE space = ?",
        [space],
    )
    return Position(*rows[0]) if rows else None


def identity_seq(db: IdentityDb, space: str) -> tuple[int, str]:
    """The identity consumer's position and rules fingerprint (0, "" before it ran)."""
    rows = db.execute("SELECT seq, rules FROM identity_position WHERE space = ?", [space])
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")
