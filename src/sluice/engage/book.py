"""The states of a step's profiles: loaded once, changed in memory, written back.

Events add their partials to the states their specs match; a merge moves the loser's states
into the winner's (states.merge); saving drops the buckets windows have left and records when
the next one leaves (`expires_day`, what the tick looks for).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from sluice.engage import states
from sluice.engage.definitions import Definitions
from sluice.identity.tables import IdentityDb
from sluice.store.base import StoredEvent

_decode = msgspec.json.Decoder(dict[str, Any]).decode


class StateBook:
    """The states of a step's profiles: loaded once, changed in memory, written back."""

    def __init__(self, db: IdentityDb, space: str, defs: Definitions) -> None:
        self.db = db
        self.space = space
        self.defs = defs
        self.states: dict[str, dict[str, states.State]] = {}
        self.changed: set[tuple[str, str]] = set()
        self.deleted: set[str] = set()
        # (profile, key) -> (day, value): values read the clock by the day, and a profile is
        # judged at each of its events; kept until the state changes.
        self._values: dict[tuple[str, str], tuple[int, Any]] = {}
        # The event names the specs read (None: one reads every event): an event of another
        # name, by the log's own column, is not even decoded.
        names = {spec.event for spec in defs.specs}
        self.names: set[str | None] | None = None if None in names else names

    def load(self, profiles: Iterable[str]) -> None:
        profiles = sorted(set(profiles) - set(self.states))
        for p in profiles:
            self.states[p] = {}
        for start in range(0, len(profiles), 500):
            chunk = profiles[start : start + 500]
            clause, params = self.db.in_list(chunk)
            for profile, key, text in self.db.execute(
                "SELECT profile_id, key, state FROM engage_states WHERE space = ?"
                f" AND profile_id {clause}",
                [self.space, *params],
            ):
                self.states[profile][key] = states.load(text)

    def add(self, profile: str, event: StoredEvent) -> bool:
        """Whether the event changed one of the profile's states."""
        specs = self.defs.specs
        if not specs:
            return False
        if self.names is not None and event.event is not None and event.event not in self.names:
            return False
        try:
            body = _decode(event.payload)
        except msgspec.DecodeError:
            return False
        changed = False
        own = self.states.setdefault(profile, {})
        for spec in specs:
            if not spec.matches(body):
                continue
            part = states.partial(spec.kind, spec.value_of(body), event.received_at_ms, event.seq)
            if part is None:
                continue
            state = own.setdefault(spec.key, {})
            states.add(
                spec.kind, state, states.bucket_of(event.received_at_ms, spec.window_days), part
            )
            self.changed.add((profile, spec.key))
            self._values.pop((profile, spec.key), None)
            changed = True
        return changed

    def merge(self, loser: str, winner: str) -> None:
        lost = self.states.pop(loser, {})
        self.deleted.add(loser)
        own = self.states.setdefault(winner, {})
        kinds = {s.key: s.kind for s in self.defs.specs}
        for key, state in lost.items():
            self._values.pop((loser, key), None)
            self._values.pop((winner, key), None)
            if key in kinds:
                own[key] = states.merge(kinds[key], own.get(key, {}), state)
                self.changed.add((winner, key))

    def expire_all(self, clock: int) -> None:
        self._values.clear()
        windows = {s.key: s.window_days for s in self.defs.specs}
        for profile, own in self.states.items():
            for key in list(own):
                own[key] = states.expire(own[key], clock, windows.get(key))
                self.changed.add((profile, key))

    def save(self, clock: int) -> None:
        db, space = self.db, self.space
        windows = {s.key: s.window_days for s in self.defs.specs}
        if self.deleted:
            clause, params = db.in_list(sorted(self.deleted))
            db.execute(
                f"DELETE FROM engage_states WHERE space = ? AND profile_id {clause}",
                [space, *params],
            )
        upserts, removed = [], []
        for profile, key in sorted(self.changed):
            if profile in self.deleted:
                continue
            state = states.expire(self.states[profile].get(key, {}), clock, windows.get(key))
            self.states[profile][key] = state
            if state:
                upserts.append(
                    (space, profile, key, states.dump(state),
                     states.expires_day(state, windows.get(key)))
                )  # fmt: skip
            else:
                removed.append((space, profile, key))
        db.executemany(
            "INSERT INTO engage_states (space, profile_id, key, state, expires_day)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (space, profile_id, key) DO UPDATE"
            " SET state = excluded.state, expires_day = excluded.expires_day",
            upserts,
        )
        db.executemany(
            "DELETE FROM engage_states WHERE space = ? AND profile_id = ? AND key = ?", removed
        )
        self.changed.clear()

    def state(self, profile: str, key: str) -> states.State:
        return self.states.get(profile, {}).get(key, {})

    def value(self, profile: str, key: str, kind: str, clock: int, window_days: int | None) -> Any:
        """The value of a profile's state at this clock (states.value)."""
        day = states.day_of(clock)
        known = self._values.get((profile, key))
        if known is not None and known[0] == day:
            return known[1]
        found = states.value(kind, self.state(profile, key), clock, window_days)
        self._values[(profile, key)] = (day, found)
        return found
