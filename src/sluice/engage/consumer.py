"""The Engage consumer: computed-trait states and audience memberships, a step at a time.

It reads the log in seq order, never past the identity consumer's position, and takes each
event's profile from the identity graph (`profile_events`: the profile the event resolved to
then). Merges (`merges`, by seq) move the loser's states into the winner's, between the events
of the step in log order. A profile is judged after each of its events and each merge into it,
at the clock of that point, and the events of a change carry that point (messageId, timestamp):
what is sent does not depend on how many events a step reads. Each step is one transaction
holding the new states, the emitted values and memberships, the events they produce (the
outbox, emit.py) and the new position; killed at any point, the step is redone and nothing is
emitted twice.

Windows use the log's logical clock (the newest received_at processed), so a rebuild decides
as the first run did; `tick` moves the clock to the wall clock when the consumer is idle, so
that memberships also end with time. Changed definitions (or identity rules) recompute the
states from the log with emission off until the old position, then a sweep of every profile
emits only what differs from what was emitted before: a new audience's current members (its
initial sync), and nothing for unchanged ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sluice.engage import states
from sluice.engage.book import StateBook
from sluice.engage.definitions import Definitions
from sluice.engage.evaluate import Judge
from sluice.engage.outcomes import Change, Outcomes
from sluice.engage.position import Position, identity_seq, read_position
from sluice.engage.tables import ENGAGE_TABLES, ensure_schema, transaction
from sluice.identity.tables import IdentityDb
from sluice.store.base import EventStore
from sluice.workspace.model_engage import ENGAGE_SOURCE_ID

log = logging.getLogger(__name__)
DEFAULT_STEP_EVENTS = 5_000
SWEEP_PROFILES = 2_000


class EngageConsumer:
    def __init__(
        self,
        store: EventStore,
        db: IdentityDb,
        space: str,
        definitions: Definitions,
        step_events: int = DEFAULT_STEP_EVENTS,
    ) -> None:
        self.store = store
        self.db = db
        self.space = space
        self.defs = definitions
        self.step_events = step_events
        self.outcomes = Outcomes(db, space, definitions)
        ensure_schema(db)

    def fingerprint(self) -> str:
        return f"{self.defs.fingerprint}:{identity_seq(self.db, self.space)[1]}"

    def prepare(self) -> str:
        """Bring the states in line with the definitions: "" or "rebuilding"."""
        with transaction(self.db, self.space):
            position = read_position(self.db, self.space)
            fingerprint = self.fingerprint()
            if position is not None and position.fingerprint == fingerprint:
                return ""
            if position is not None and position.seq == 0:
                # Nothing read yet (e.g. prepared before the identity graph's first run): the
                # new fingerprint changes nothing already computed.
                self.db.execute(
                    "UPDATE engage_position SET fingerprint = ? WHERE space = ?",
                    [fingerprint, self.space],
                )
                return ""
            self._reset(position, fingerprint)
        if position is not None:
            log.info("engage definitions changed: recomputing from the log")
        return "rebuilding" if position is not None else ""

    def _reset(self, position: Position | None, fingerprint: str) -> None:
        """States emptied, position at 0; no emission until the log's end (its history is not
        sent as flips long past), then a sweep of every profile sends what differs from what
        was sent."""
        space, db = self.space, self.db
        db.execute("DELETE FROM engage_states WHERE space = ?", [space])
        # What was emitted stays (a rebuild emits only differences), except for definitions
        # that are gone: nothing more is sent for them.
        keep_traits = [t.key for t in self.defs.traits] or [""]
        clause, params = db.in_list(keep_traits)
        db.execute(
            f"DELETE FROM computed_values WHERE space = ? AND NOT (trait_key {clause})",
            [space, *params],
        )
        keep_audiences = [a.key for a in self.defs.audiences] or [""]
        clause, params = db.in_list(keep_audiences)
        db.execute(
            f"DELETE FROM audience_members WHERE space = ? AND NOT (audience_key {clause})",
            [space, *params],
        )
        # The log's end, not the old position: definitions removed then added again later
        # must not send what happened in between as flips long past either.
        until = self.store.last_seq()
        db.execute("DELETE FROM engage_position WHERE space = ?", [space])
        # The clock stays: the sweep then judges windows at the time the last values were
        # sent at (a tick may have moved it past the log's newest event).
        db.execute(
            "INSERT INTO engage_position (space, seq, clock_ms, fingerprint, replay_until,"
            " events, emitted, rebuilds) VALUES (?, 0, ?, ?, ?, ?, ?, ?)",
            [space, position.clock_ms if position else 0, fingerprint, until,
             position.events if position else 0, position.emitted if position else 0,
             (position.rebuilds + 1) if position else 0],
        )  # fmt: skip

    # --- a step ------------------------------------------------------------------------------
    def step(self, on_commit: Callable[[], None] | None = None) -> int:
        """Process the next events (or the next profiles of a sweep) in one transaction;
        returns how many were read (0: caught up with the identity graph)."""
        with transaction(self.db, self.space):
            position = read_position(self.db, self.space)
            if position is None:
                raise RuntimeError("engage position missing: call prepare() first")
            if position.sweep_after is not None:
                done = self._sweep(position)
            else:
                done = self._events(position)
            if done and on_commit is not None:
                on_commit()  # tests: a crash just before the commit
        return done

    def _events(self, position: Position) -> int:
        db, space = self.db, self.space
        limit, _ = identity_seq(db, space)
        if limit <= position.seq:
            return 0
        events = [
            e for e in self.store.read_after(position.seq, self.step_events) if e.seq <= limit
        ]
        if not events:
            return 0
        lo, hi = position.seq, events[-1].seq
        profiles = dict(
            db.execute(
                "SELECT pe.seq, pe.profile_id FROM profile_events pe JOIN profiles p"
                " ON p.space = pe.space AND p.profile_id = pe.profile_id"
                " WHERE pe.space = ? AND pe.seq > ? AND pe.seq <= ? AND p.collection = 'users'",
                [space, lo, hi],
            )
        )
        merges = db.execute(
            "SELECT seq, loser, winner FROM merges WHERE space = ? AND seq > ? AND seq <= ?"
            " ORDER BY seq, loser",
            [space, lo, hi],
        )
        touched = set(profiles.values()) | {m[1] for m in merges} | {m[2] for m in merges}
        book = StateBook(db, space, self.defs)
        book.load(touched)
        # Replaying: states only, what differs is sent by the sweep after it.
        judge = None if position.replaying else Judge(db, space, self.defs, book)
        if judge is not None:
            judge.load(touched)
        clock = position.clock_ms
        losers: set[str] = set()
        changes: list[Change] = []
        judged: dict[str, int] = {}  # profile -> the day of the clock it was last judged at
        pending = list(reversed(merges))
        for event in events:
            # The profiles whose values may change here: merges' winners, the event's profile.
            due: list[str] = []
            while pending and pending[-1][0] <= event.seq:
                _, loser, winner = pending.pop()
                self._merge(book, judge, loser, winner, losers)
                due.append(winner)
            if event.source_id != ENGAGE_SOURCE_ID:  # its own: neither counted nor moving the clock
                clock = max(clock, event.received_at_ms)
                profile = profiles.get(event.seq)
                # Values read the clock by the day: judged at this day already, with no
                # state changed since (traits are read once a step), nothing can change.
                if profile is not None and (
                    book.add(profile, event) or judged.get(profile) != states.day_of(clock)
                ):
                    due.append(profile)
            if judge is not None:
                changes += self._judge(judge, due, losers, event.seq, clock, judged)
        for seq, loser, winner in reversed(pending):
            self._merge(book, judge, loser, winner, losers)
            if judge is not None:
                changes += self._judge(judge, [winner], losers, seq, clock, judged)
        book.save(clock)
        sweep: str | None = None
        if position.replaying:
            self.outcomes.hand_over(merges)
            if hi >= position.replay_until:
                sweep = ""  # caught up with the old position: compare everyone once
        # A loser's changes before its merge are sent too (with steps of one event they would
        # have been); its rows go after.
        emitted = self.outcomes.emit(changes, position)
        self.outcomes.drop(losers)
        db.execute(
            "UPDATE engage_position SET seq = ?, clock_ms = ?, sweep_after = ?,"
            " events = events + ?, emitted = emitted + ? WHERE space = ?",
            [hi, clock, sweep, len(events), emitted, space],
        )
        return len(events)

    @staticmethod
    def _merge(
        book: StateBook, judge: Judge | None, loser: str, winner: str, losers: set[str]
    ) -> None:
        book.merge(loser, winner)
        if judge is not None:
            judge.merge(loser, winner)
        losers.add(loser)

    @staticmethod
    def _judge(
        judge: Judge,
        due: list[str],
        losers: set[str],
        seq: int,
        clock: int,
        judged: dict[str, int],
    ) -> list[Change]:
        """Each profile's changes at this point of the log (seq, clock)."""
        found = []
        for profile in dict.fromkeys(due):
            if profile not in losers:
                judged[profile] = states.day_of(clock)
                found += [Change(seq, clock, e) for e in judge.judge(profile, clock)]
        return found

    def _sweep(self, position: Position) -> int:
        db, space = self.db, self.space
        rows = db.execute(
            "SELECT profile_id FROM profiles WHERE space = ? AND collection = 'users'"
            " AND merged_into IS NULL AND profile_id > ? ORDER BY profile_id LIMIT ?",
            [space, position.sweep_after, SWEEP_PROFILES],
        )
        batch = [str(r[0]) for r in rows]
        book = StateBook(db, space, self.defs)
        book.load(batch)
        emitted = self._judge_all(book, batch, position.seq, position.clock_ms, position)
        after = batch[-1] if len(batch) == SWEEP_PROFILES else None
        db.execute(
            "UPDATE engage_position SET sweep_after = ?, emitted = emitted + ? WHERE space = ?",
            [after, emitted, space],
        )
        return max(len(batch), 1)

    def tick(self, now_ms: int) -> int:
        """Move the clock to `now_ms` when idle, and re-evaluate the profiles a window has
        left since; returns how many profiles were re-evaluated."""
        total = 0
        while True:
            with transaction(self.db, self.space):
                position = read_position(self.db, self.space)
                if position is None or position.replaying or position.sweep_after is not None:
                    return total
                clock = max(position.clock_ms, now_ms)
                rows = self.db.execute(
                    "SELECT DISTINCT profile_id FROM engage_states WHERE expires_day <= ?"
                    " AND space = ? LIMIT ?",
                    [states.day_of(clock), self.space, SWEEP_PROFILES],
                )
                batch = [str(r[0]) for r in rows]
                book = StateBook(self.db, self.space, self.defs)
                book.load(batch)
                book.expire_all(clock)
                book.save(clock)
                emitted = self._judge_all(book, batch, position.seq, clock, position)
                self.db.execute(
                    "UPDATE engage_position SET clock_ms = ?, emitted = emitted + ?"
                    " WHERE space = ?",
                    [clock, emitted, self.space],
                )
            total += len(batch)
            if len(batch) < SWEEP_PROFILES:
                return total

    def run_until_caught_up(self) -> int:
        total = 0
        while read := self.step():
            total += read
        return total

    def _judge_all(
        self, book: StateBook, profiles: Iterable[str], seq: int, clock: int, position: Position
    ) -> int:
        """Judge each profile at one point (a sweep, a tick); returns how many events were
        queued."""
        profiles = sorted(profiles)
        if not profiles or self.defs.empty:
            return 0
        judge = Judge(self.db, self.space, self.defs, book)
        judge.load(profiles)
        changes = [Change(seq, clock, c) for p in profiles for c in judge.judge(p, clock)]
        return self.outcomes.emit(changes, position)


__all__ = ["ENGAGE_TABLES", "EngageConsumer", "Position", "read_position"]
