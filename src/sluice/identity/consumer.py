"""The identity consumer: reads the log after its position and applies it, a step at a time.

Each step is one transaction on the identity tables holding the step's effects and the new
position together (the warehouse loaders' pattern): killed at any point, the consumer redoes
the step from the old position, and nothing is applied twice. Replaying the same log gives the
same tables, profile ids included, whatever the step size, which is what makes a rebuild (the
tables emptied, the position at 0) give back the same profiles.

Rules come from the workspace. When their fingerprint differs from the one the tables were
built with, the consumer rebuilds by itself if the log still holds every event the graph has
seen; otherwise (the log was trimmed) it applies the new rules from now on, as Segment does, and
`sluice identity status` says a rebuild would lose the trimmed events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from sluice.gcpause import gc_paused
from sluice.identity.extract import Identifying, identifying
from sluice.identity.graph import Changes, Graph, Seen
from sluice.identity.rules import ACCOUNTS, USERS, Rules
from sluice.identity.state import StepEvent, StepWrites, TraitWrite, load, write
from sluice.identity.tables import TABLES, IdentityDb
from sluice.spec.timestamps import parse_ms
from sluice.store.base import EventStore, StoredEvent

log = logging.getLogger(__name__)
DEFAULT_STEP_EVENTS = 5_000
MAX_LOGGED_REFUSALS = 5  # per step; the counter has them all
_encode = msgspec.json.Encoder(order="sorted").encode


@dataclass(slots=True)
class Position:
    seq: int
    clock_ms: int
    first_seq: int | None
    rules: str
    rebuild_needed: bool
    events: int
    merges: int
    refused: int
    demoted: int


def read_position(db: IdentityDb, space: str) -> Position | None:
    rows = db.execute(
        "SELECT seq, clock_ms, first_seq, rules, rebuild_needed, events, merges, refused,"
        " demoted FROM identity_position WHERE space = ?",
        [space],
    )
    if not rows:
        return None
    r = rows[0]
    return Position(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8])


def reset(db: IdentityDb, space: str, rules: Rules) -> None:
    """Empty the space's tables and start again from the log's beginning (in one transaction:
    a crash leaves either the old tables or the empty ones)."""
    with db.transaction(space):
        for table in TABLES:
            db.execute(f"DELETE FROM {table} WHERE space = ?", [space])
        db.execute("DELETE FROM identity_position WHERE space = ?", [space])
        db.execute(
            "INSERT INTO identity_position (space, seq, clock_ms, rules) VALUES (?, 0, 0, ?)",
            [space, rules.fingerprint],
        )


class IdentityConsumer:
    def __init__(
        self,
        store: EventStore,
        db: IdentityDb,
        space: str,
        rules: Rules,
        step_events: int = DEFAULT_STEP_EVENTS,
    ) -> None:
        self.store = store
        self.db = db
        self.space = space
        self.rules = rules
        self.step_events = step_events

    def prepare(self) -> str:
        """Bring the tables in line with the rules; says what it did ("", "rebuilt", ...)."""
        position = read_position(self.db, self.space)
        if position is None:
            reset(self.db, self.space, self.rules)
            return ""
        if position.rules == self.rules.fingerprint:
            return ""
        if position.first_seq is None or self.log_complete(position):
            log.info("identity rules changed: rebuilding the identity graph from the log")
            reset(self.db, self.space, self.rules)
            return "rebuilt"
        log.warning(
            "identity rules changed, but the log no longer holds the graph's first events:"
            " the new rules apply from now on (`sluice identity rebuild --force` rebuilds"
            " from what the log holds)"
        )
        with self.db.transaction(self.space):
            self.db.execute(
                "UPDATE identity_position SET rules = ?, rebuild_needed = 1 WHERE space = ?",
                [self.rules.fingerprint, self.space],
            )
        return "rebuild needed"

    def log_complete(self, position: Position) -> bool:
        """Whether the log still holds every event the graph has seen (a rebuild loses none)."""
        first = self.store.read_after(0, 1)
        return position.first_seq is None or (bool(first) and first[0].seq <= position.first_seq)

    def step(self, on_commit: Callable[[], None] | None = None) -> int:
        """Apply the next events of the log in one transaction; returns how many were read."""
        with gc_paused():  # a step's rows and graph stay alive until it ends
            return self._step(on_commit)

    def _step(self, on_commit: Callable[[], None] | None) -> int:
        # The events are read and parsed before the write transaction begins (the checkpoint
        # thread catches up meanwhile, so the transaction finds the WAL copied and rewinds
        # it without waiting); inside it, the position is read again, and a step another
        # runner applied in between (`sluice identity rebuild`) is not applied twice.
        while True:
            position = read_position(self.db, self.space)
            if position is None:
                raise RuntimeError("identity position missing: call prepare() first")
            events = self.store.read_after(position.seq, self.step_events)
            if not events:
                return 0
            # The log's clock at each event: its newest received_at so far.
            clock, clocks = position.clock_ms, []
            for event in events:
                clock = max(clock, event.received_at_ms)
                clocks.append(clock)
            rules = self.rules
            work: list[tuple[StoredEvent, int, Identifying]] = []
            for event, at in zip(events, clocks, strict=True):
                found = identifying(event.payload, rules)
                if found is not None and found.ids:
                    work.append((event, at, found))
            with self.db.transaction(self.space):
                if read_position(self.db, self.space) != position:
                    continue  # moved meanwhile: read again from where it is now
                changes = self._apply_step(position, events, work, clock, on_commit)
            break
        for refusal in changes.refusals[:MAX_LOGGED_REFUSALS]:
            log.warning("identity: merge refused by the merge-size guard: %s", refusal)
        if len(changes.refusals) > MAX_LOGGED_REFUSALS:
            log.warning(
                "identity: %d more merges refused in this step",
                len(changes.refusals) - MAX_LOGGED_REFUSALS,
            )
        return len(events)

    def _apply_step(
        self,
        position: Position,
        events: list[StoredEvent],
        work: list[tuple[StoredEvent, int, Identifying]],
        clock: int,
        on_commit: Callable[[], None] | None,
    ) -> Changes:
        """Inside the step's transaction: load, resolve, write, move the position."""
        graph = Graph(self.space, self.rules)
        writes = StepWrites()
        load(
            self.db,
            graph,
            [StepEvent(e.message_id, at, found.ids, found.accounts) for e, at, found in work],
        )
        for event, at, found in work:
            self._apply(graph, writes, event, found, at)
        changes = graph.take()
        write(self.db, graph, changes, writes)
        first_seq = position.first_seq if position.first_seq is not None else events[0].seq
        self.db.execute(
            "UPDATE identity_position SET seq = ?, clock_ms = ?, first_seq = ?,"
            " events = events + ?, merges = merges + ?, refused = refused + ?,"
            " demoted = demoted + ? WHERE space = ?",
            [events[-1].seq, clock, first_seq, len(events), len(changes.merges),
             changes.refused, changes.demoted, self.space],
        )  # fmt: skip
        if on_commit is not None:
            on_commit()  # tests: a crash just before the commit
        return changes

    def run_until_caught_up(self, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while read := self.step():
            total += read
            if progress is not None:
                progress(read)
        return total

    # --- one event ---------------------------------------------------------------------------
    def _apply(
        self, graph: Graph, writes: StepWrites, event: StoredEvent, found: Identifying, clock: int
    ) -> None:
        ids = found.ids
        if not found.accounts:  # nearly every event: users only, and most of them known
            profile = graph.known(ids, clock)
            if profile is None:
                seen = Seen(event.seq, event.message_id, event.source_id, clock)
                profile = graph.attach(USERS, ids, seen)
            writes.events.append((profile, event.seq))
            if found.user_traits:
                _traits(writes, profile, found.user_traits, event, found.timestamp)
            return
        seen = Seen(event.seq, event.message_id, event.source_id, clock)
        for collection, traits in ((USERS, found.user_traits), (ACCOUNTS, found.account_traits)):
            found_profile = graph.resolve(collection, [k for k in ids if k[0] == collection], seen)
            if found_profile is None:
                continue
            writes.events.append((found_profile, event.seq))
            if traits:
                _traits(writes, found_profile, traits, event, found.timestamp)


def _traits(
    writes: StepWrites, profile: str, traits: dict[str, object], event: StoredEvent, sent: object
) -> None:
    """An event's traits on its profile, dated by the event's time (its arrival without one)."""
    at = parse_ms(sent)
    updated_ms = at if at is not None else event.received_at_ms
    for key, value in traits.items():
        writes.trait(
            profile,
            key,
            TraitWrite(_encode(value).decode(), event.source_id, updated_ms, event.seq),
        )
