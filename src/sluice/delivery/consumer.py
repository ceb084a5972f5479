"""One destination's consumer: read the log from its cursor, deliver, and keep failures off it.

A step takes the next run of events from the cursor and the retry-set rows that are due, plans
them (routing, filters, mappings: the configuration of now, for retries too), and sends each
request once (`sending.py`). What fails with a retryable answer joins the destination's retry
set (`store/retry_set.py`) and the cursor moves on: one failing event never holds back the
others. Failures and parks are committed as they happen: with the step's cursor in one
transaction when the step ends at once (the usual case), or after each round of sending when it
does not (a circuit that opens mid-step, a Retry-After pause).

Outages are not per-event failures: while the circuit breaker is open the step's unsent requests
wait for its probes and no further step is read, so the cursor pauses instead of copying the log
into the retry set; when a probe succeeds, what failed during the outage is made due at once.
The retry set has a bound (`delivery.max_retrying`): past it the cursor pauses too. Events are
parked after the retry window (default 4 h from receipt) or on a permanent error.

`ordering: per_user` adds RudderStack's barrier: a user's later events wait (`waiting` rows)
behind that user's retrying event, at most one request per user is in flight, and every other
user flows. Crash safety: a restart re-reads the step from the committed cursor and skips the
events that already have a retry-set or parked row, so nothing is lost or counted twice; what
was sent and not yet committed is sent again (at least once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Hashable, Sequence
from typing import Any

import aiohttp

from sluice.delivery.config import DEFAULT_CHUNK_EVENTS, DestinationConfig
from sluice.delivery.consumer_state import ConsumerState
from sluice.delivery.parked_resend import ParkedResend
from sluice.delivery.partitions import (
    Partition,
    cursor_name,
    partition_cursors,
    starting_position,
    user_hash,
)
from sluice.delivery.plan import Plan, plan
from sluice.delivery.retries import DueRetries, RetryBook, RetryChanges, merge, plan_retries
from sluice.delivery.sending import Sender
from sluice.delivery.step_result import StepResult
from sluice.destinations.base import Mapped
from sluice.store.base import Store, StoredEvent
from sluice.store.base_delivery import DeliveryCommit, NewParked, RetryRow

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.05
PARKED_POLL_S = 1.0
RETRY_POLL_S = 0.5  # how often the retry set is asked for due rows (when it has any)
REFRESH_S = 2.0  # how often the set's size (and per-user barriers) are read back
DUE_LIMIT = 500  # retry-set rows per step
FAR_FUTURE_MS = 2**62


@dataclasses.dataclass(slots=True)
class _Flushed:
    """What of a step's result is already committed (by identity: `settle` reorders lists)."""

    ids: set[int] = dataclasses.field(default_factory=set)

    def new(self, items: Sequence[Any]) -> list[Any]:
        fresh = [x for x in items if id(x) not in self.ids]
        self.ids.update(id(x) for x in fresh)
        return fresh


class Consumer(ConsumerState, ParkedResend):
    """Delivers one destination's events (or one partition's); `run()` until cancelled."""

    def __init__(
        self,
        config: DestinationConfig,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        partition: Partition | None = None,
    ) -> None:
        """`partition` (k, N): deliver only the users of partition k (delivery/partitions.py)."""
        self.config = config
        self.partition = partition
        self.cursor_name = cursor_name(config.id, partition)
        self.store = store
        self.sender = Sender(config, session)
        self.book = RetryBook(config)
        self.per_user = config.options.ordering == "per_user"
        self.blocked: dict[int, int] = {}  # per_user: active rows per user hash
        self.skip: set[int] = set()  # seqs past the cursor that already have a failure row
        self.active = 0  # active rows in the destination's retry set
        self._next_retry_poll = 0.0
        self._next_refresh = 0.0
        self._last_parked_check = 0.0
        self._state: str | None = None  # the kind of state last written
        self._was_open = False

    @property
    def breaker(self) -> Any:
        return self.sender.breaker

    # --- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        cursor = await self._start()
        prefetched: asyncio.Task[list[StoredEvent]] | None = None
        while True:
            await self._refresh()
            due = await self._due()
            events: list[StoredEvent] = []
            if not self.full:
                events = await (prefetched or self._next_events(cursor))
                prefetched = None
                if len(events) >= DEFAULT_CHUNK_EVENTS:
                    # Read the next run from the log (in a thread) while this one is delivered.
                    prefetched = asyncio.create_task(self._next_events(events[-1].seq))
            if events or due:
                cursor = await self.step(events, cursor, due)
            else:
                await asyncio.sleep(IDLE_POLL_S)
            # Parked events are the destination's, not a partition's: partition 0 resends them.
            resends = self.partition is None or self.partition[0] == 0
            if resends and time.monotonic() - self._last_parked_check >= PARKED_POLL_S:
                self._last_parked_check = time.monotonic()
                await self.resend_parked()

    async def _start(self) -> int:
        store = self.store
        name = self.cursor_name
        cursor = await asyncio.to_thread(store.find_cursor, name)
        if cursor is None:
            if self.partition is not None:  # a new partition starts where the destination is
                cursors = await asyncio.to_thread(store.cursors)
                cursor = starting_position(cursors, self.config.id)
            if cursor is None:  # a new destination gets what arrives from now on, as at Segment
                cursor = await asyncio.to_thread(store.last_seq)
            await asyncio.to_thread(store.commit_cursor, name, cursor)
        dest = self.config.id
        self.skip = await asyncio.to_thread(store.failed_seqs_after, dest, cursor)
        if not self.per_user and (self.partition is None or self.partition[0] == 0):
            now_ms = int(time.time() * 1000)
            await asyncio.to_thread(store.release_waiting, dest, now_ms=now_ms)
        self._next_refresh = 0.0
        await self._refresh()
        return cursor

    async def _next_events(self, cursor: int) -> list[StoredEvent]:
        events = await asyncio.to_thread(self.store.read_after, cursor, DEFAULT_CHUNK_EVENTS)
        wait_ms = self.config.options.max_wait_ms
        if events and wait_ms and len(events) < DEFAULT_CHUNK_EVENTS:
            await asyncio.sleep(wait_ms / 1000)
            events = await asyncio.to_thread(self.store.read_after, cursor, DEFAULT_CHUNK_EVENTS)
        return events

    @property
    def full(self) -> bool:
        return self.active >= self.config.options.max_retrying

    async def _refresh(self) -> None:
        """Read the retry set's size (operators change it too) and per-user barriers back."""
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_S
        dest = self.config.id
        counts = await asyncio.to_thread(self.store.retry_counts, dest)
        self.active = sum(counts.get(dest, {}).values())
        if self.per_user:
            self.blocked = await asyncio.to_thread(self.store.retry_users, dest, self.partition)
        await self._publish_state()

    async def _due(self) -> list[RetryRow]:
        """Retry-set rows due now; with the circuit open and nothing else to probe with, the
        soonest row, due or not (so a recovery is seen within one probe interval)."""
        now = time.monotonic()
        if self.active <= 0 or now < self._next_retry_poll:
            return []
        now_ms = int(time.time() * 1000)
        rows = await asyncio.to_thread(
            self.store.due_retries, self.config.id, now_ms, DUE_LIMIT, self.partition
        )
        if not rows and self.breaker.is_open and now >= self.sender.probe_at:
            rows = await asyncio.to_thread(
                self.store.due_retries, self.config.id, FAR_FUTURE_MS, 1, self.partition
            )
        self._next_retry_poll = now + (0.0 if len(rows) >= DUE_LIMIT else RETRY_POLL_S)
        return rows

    # --- one step --------------------------------------------------------------------------
    async def step(
        self, events: Sequence[StoredEvent], cursor: int, due_rows: Sequence[RetryRow] = ()
    ) -> int:
        """Deliver one run of events and the due retries; return the new cursor (committed)."""
        fresh = [e for e in events if e.seq not in self.skip] if self.skip else list(events)
        if self.skip and events:
            self.skip = {s for s in self.skip if s > events[-1].seq}
        work = plan(self.config, fresh, self.partition)
        due = plan_retries(self.config, due_rows) if due_rows else None
        combined = merge(due.work, work) if due is not None else work
        retried = set(due.rows) if due is not None else set()
        flushed = _Flushed()

        async def on_round(result: StepResult) -> None:
            await self._commit(result, combined, due, flushed, None)

        user_key = hold = None
        if self.per_user:
            user_key = _user_key

            def hold(m: Mapped) -> bool:
                return m.message_id not in retried and user_hash(m.event) in self.blocked

        result = await self.sender.deliver(
            combined, retry_in_step=False, user_key=user_key, hold=hold, on_round=on_round
        )
        result.parked.extend(_unusable(combined))
        new_cursor = events[-1].seq if events else cursor
        await self._commit(result, combined, due, flushed, (events, new_cursor))
        if self.partition is not None and events:
            await asyncio.to_thread(self._advance_destination_cursor)
        return new_cursor

    async def _commit(
        self,
        result: StepResult,
        work: Plan,
        due: DueRetries | None,
        flushed: _Flushed,
        end: tuple[Sequence[StoredEvent], int] | None,
    ) -> None:
        """Commit what is new in `result`: failures, parks, held events; at the step's `end`
        also deliveries, filtered counts, settled retries and the cursor, in one transaction."""
        changes = self.book.failures(flushed.new(result.failed), work, due)
        changes.added.extend(self.book.waiting(flushed.new(result.held), work))
        parked = flushed.new(result.parked)
        counters: dict[str, int] = {}
        for p in parked:
            key = f"parked:{p.reason.split(':', 1)[0]}"
            counters[key] = counters.get(key, 0) + 1
        latencies: list[int] = []
        if end is not None:
            if due is not None:
                settled = self.book.settled(result, due, work)
                changes.delivered, changes.dropped = settled.delivered, settled.dropped
                if self.per_user and (settled.delivered or settled.dropped):
                    self._next_retry_poll = 0.0  # their users' next waiting events are due now
            counters.update({f"filtered:{reason}": n for reason, n in work.filtered.items()})
            counters["delivered"] = len(result.delivered)
            latencies = [
                finished - work.received_at_ms[mid]
                for mid, finished in result.delivered.items()
                if mid in work.received_at_ms
            ]
        self._track(changes, due)
        touched = bool(changes.added or changes.rescheduled or changes.delivered or changes.dropped)
        events, new_cursor = end if end is not None else ((), None)
        if end is None and not (touched or parked):
            return
        await asyncio.to_thread(
            self.store.commit_delivery,
            DeliveryCommit(
                destination=self.config.id,
                cursor=new_cursor if events else None,
                first_seq=events[0].seq if events else 0,
                last_seq=events[-1].seq if events else -1,
                finished_at_ms=int(time.time() * 1000),
                attempts=result.attempts,
                counters=counters,
                latencies_ms=latencies,
                parked=parked,
                cursor_name=self.cursor_name,
                retries=changes.added,
                retries_rescheduled=changes.rescheduled,
                retries_delivered=changes.delivered,
                retries_dropped=changes.dropped,
                retrying_now=self.active if touched else None,
            ),
        )
        if parked:  # committed: say so once per step, with the first reason (already redacted)
            log.info(
                "destination %s parked %d event(s) (first: %s: %s) — `sluice parked list`",
                self.config.id, len(parked), parked[0].message_id, parked[0].reason,
            )  # fmt: skip
        await self._after_round()

    def _track(self, changes: RetryChanges, due: DueRetries | None) -> None:
        """Keep the in-memory size of the set and the per-user barriers up to date."""
        self.active += changes.active_delta
        if not self.per_user:
            return
        for row in changes.added:
            self.blocked[row.user_hash] = self.blocked.get(row.user_hash, 0) + 1
        if due is None:
            return
        hashes = {(r.seq, r.action): r.user_hash for rows in due.rows.values() for r in rows}
        settled = [(d.seq, d.action) for d in changes.delivered]
        settled += [(k.seq, k.action) for k in changes.dropped]
        for key in settled:
            h = hashes.get(key)
            if h is not None and h in self.blocked:
                self.blocked[h] -= 1
                if self.blocked[h] <= 0:
                    del self.blocked[h]

    def _advance_destination_cursor(self) -> None:
        """Keep the destination's plain cursor at its lowest partition's (status, retention)."""
        assert self.partition is not None
        n = self.partition[1]
        cursors = self.store.cursors()
        own = partition_cursors(cursors, self.config.id, n)
        if len(own) == n:
            lowest = min(own.values())
            if cursors.get(cursor_name(self.config.id)) != lowest:
                self.store.commit_cursor(cursor_name(self.config.id), lowest)


def _unusable(work: Plan) -> list[NewParked]:
    """Events that could not be planned, parked with the error (logged once per step)."""
    if work.unusable:
        stored, error = work.unusable[0]
        log.warning(
            "%d event(s) cannot be read for delivery (first: %s: %s); parked",
            len(work.unusable), stored.message_id, error,
        )  # fmt: skip
    return [
        NewParked(s.message_id, s.seq, f"unreadable_event: {error}", 0, b"{}", b"{}", s.payload)
        for s, error in work.unusable
    ]


def _user_key(mapped: Mapped) -> Hashable:
    return user_hash(mapped.event)
