"""What Engage has sent: the values and memberships last emitted for each profile, and the
events of each change queued in the outbox (emit.py) in the step's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import msgspec

from sluice.engage.definitions import Definitions
from sluice.engage.emit import audience_events, to_outbox, trait_events, who_of
from sluice.engage.evaluate import Evaluation
from sluice.engage.position import Position
from sluice.identity.tables import IdentityDb

_encode = msgspec.json.Encoder(order="sorted").encode


class Change(NamedTuple):
    """A change found at a point of the log: its events carry the point (seq, clock)."""

    seq: int
    clock: int
    evaluation: Evaluation


class Outcomes:
    """The emitted rows of one space, written in the caller's transaction."""

    def __init__(self, db: IdentityDb, space: str, definitions: Definitions) -> None:
        self.db = db
        self.space = space
        self.defs = definitions

    def drop(self, losers: Iterable[str]) -> None:
        """A merged profile is no more: its rows go (what it was sent as a member, the winner
        took over or exited when it was judged at the merge)."""
        losers = list(losers)
        if not losers:
            return
        clause, params = self.db.in_list(losers)
        for table in ("computed_values", "audience_members"):
            self.db.execute(
                f"DELETE FROM {table} WHERE space = ? AND profile_id {clause}",
                [self.space, *params],
            )

    def hand_over(self, merges: list[tuple[Any, ...]]) -> None:
        """Replaying, nobody is judged at a merge: the winner is recorded as a member of the
        audiences the loser was sent as a member of, so that the sweep sends the exit when the
        merged profile is not one."""
        for _, loser, winner in merges:
            self.db.execute(
                "INSERT INTO audience_members (space, audience_key, profile_id, member,"
                " changed_seq) SELECT space, audience_key, ?, 1, changed_seq"
                " FROM audience_members WHERE space = ? AND profile_id = ? AND member = 1"
                " ON CONFLICT (space, profile_id, audience_key) DO UPDATE SET member = 1",
                [winner, self.space, loser],
            )

    def emit(self, changes: list[Change], position: Position) -> int:
        """Record the last change of each value and queue the events of every change, each
        stamped with the point of the log it happened at; returns how many were queued."""
        if not changes:
            return 0
        who = who_of(self.db, self.space, {c.evaluation.profile for c in changes})
        bodies: list[dict[str, Any]] = []
        tracked = {t.key for t in self.defs.traits if t.send_as == "track"}
        for seq, clock, c in changes:
            stamp = f"{seq}.{clock}.{position.rebuilds}"
            if c.audience:
                bodies += audience_events(
                    self.space, who[c.profile], c.profile, c.key, bool(c.value), stamp, clock
                )
            else:
                bodies += trait_events(
                    self.space, who[c.profile], c.profile, c.key, c.value, stamp, clock,
                    as_track=c.key in tracked,
                )  # fmt: skip
        self._record(changes)
        to_outbox(self.db, self.space, position.emitted + 1, bodies)
        return len(bodies)

    def _record(self, changes: list[Change]) -> None:
        space = self.space
        last = {(c.evaluation.profile, c.evaluation.key): c for c in changes}  # the latest wins
        members = [
            (space, c.key, c.profile, int(bool(c.value)), seq)
            for seq, _, c in last.values()
            if c.audience
        ]
        values = [
            (space, c.key, c.profile, _encode(c.value).decode(), seq)
            for seq, _, c in last.values()
            if not c.audience
        ]
        self.db.executemany(
            "INSERT INTO audience_members (space, audience_key, profile_id, member, changed_seq)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (space, profile_id, audience_key) DO UPDATE"
            " SET member = excluded.member, changed_seq = excluded.changed_seq",
            members,
        )
        self.db.executemany(
            "INSERT INTO computed_values (space, trait_key, profile_id, value, changed_seq)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (space, profile_id, trait_key) DO UPDATE"
            " SET value = excluded.value, changed_seq = excluded.changed_seq",
            values,
        )
