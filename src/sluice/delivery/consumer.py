"""One destination's consumer: read the log from its cursor, deliver, retry, park, advance.

A step takes the next run of events, plans them (routing, filters, mappings), sends the requests
with bounded concurrency, and retries what failed with jittered exponential backoff. It advances
the cursor only when every event of the step is delivered, filtered or parked, in one store
transaction with the step's stats: an acknowledged event is never skipped, even across a crash
(at-least-once: a crash mid-step sends that step's requests again).

Failing endpoints delay only this destination: while its step waits for a retry nothing else
waits on it. After a run of failures the circuit breaker stops sending until a probe succeeds;
events past the retry window (default 4 h since receipt) are parked with the last exchange.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import msgspec

from sluice.delivery.config import DEFAULT_CHUNK_EVENTS, DestinationConfig
from sluice.delivery.exchange import request_record, response_record
from sluice.delivery.partitions import (
    Partition,
    cursor_name,
    partition_cursors,
    starting_position,
)
from sluice.delivery.plan import Plan, plan
from sluice.delivery.policy import CircuitBreaker, Pacer
from sluice.delivery.sender import send
from sluice.destinations.base import (
    EventFailure,
    Mapped,
    Outcome,
    OutRequest,
    Response,
    Verdict,
)
from sluice.store.base import (
    DeliveryCommit,
    NewParked,
    ParkedEvent,
    RetryingEvent,
    Store,
    StoredEvent,
)

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.05
PARKED_POLL_S = 1.0
MAX_CIRCUIT_WAIT_S = 60.0
PAYLOAD_TOO_LARGE = "payload_too_large"  # the reason a destination gives for a 413


@dataclass(slots=True)
class Pending:
    """A request still to be sent, with what it carries and how it has gone so far."""

    action_id: str
    mapped: list[Mapped]
    request: OutRequest
    attempts: int = 0
    not_before: float = 0.0  # monotonic
    last_error: str = ""
    first_attempt_ms: int = 0


@dataclass(slots=True)
class StepResult:
    delivered: dict[str, int] = field(default_factory=dict)  # message_id -> finished ms
    parked: list[NewParked] = field(default_factory=list)
    attempts: int = 0


class Consumer:
    """Delivers one destination's events; `run()` until cancelled."""

    def __init__(
        self,
        config: DestinationConfig,
        store: Store,
        session: aiohttp.ClientSession,
        *,
        record_retrying: bool = True,
        partition: Partition | None = None,
    ) -> None:
        """`record_retrying=False` for a replay: the retrying events shown by `sluice trace`
        belong to the live consumer, one set per destination. `partition` (k, N): deliver only
        the users of partition k (see delivery/partitions.py)."""
        self.config = config
        self.partition = partition
        self.cursor_name = cursor_name(config.id, partition)
        self.record_retrying = record_retrying
        self.store = store
        self.session = session
        self.breaker = CircuitBreaker()
        self.pacer = Pacer(max_concurrency=config.options.concurrency)
        self._rng = random.Random()
        self._next_request_at = 0.0
        self._last_parked_check = 0.0

    # --- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
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
        prefetched: asyncio.Task[list[StoredEvent]] | None = None
        while True:
            events = await (prefetched or self._next_events(cursor))
            prefetched = None
            if events:
                # Read the next run from the log (in a thread) while this one is delivered.
                if len(events) >= DEFAULT_CHUNK_EVENTS:
                    prefetched = asyncio.create_task(self._next_events(events[-1].seq))
                cursor = await self.step(events, cursor)
            else:
                await asyncio.sleep(IDLE_POLL_S)
            # Parked events are the destination's, not a partition's: partition 0 resends them.
            resends = self.partition is None or self.partition[0] == 0
            if resends and time.monotonic() - self._last_parked_check >= PARKED_POLL_S:
                self._last_parked_check = time.monotonic()
                await self.resend_parked()

    async def _next_events(self, cursor: int) -> list[StoredEvent]:
        events = await asyncio.to_thread(self.store.read_after, cursor, DEFAULT_CHUNK_EVENTS)
        wait_ms = self.config.options.max_wait_ms
        if events and wait_ms and len(events) < DEFAULT_CHUNK_EVENTS:
            await asyncio.sleep(wait_ms / 1000)
            events = await asyncio.to_thread(self.store.read_after, cursor, DEFAULT_CHUNK_EVENTS)
        return events

    async def step(self, events: Sequence[StoredEvent], cursor: int) -> int:
        """Deliver one run of events; return the new cursor (committed)."""
        work = plan(self.config, events, self.partition)
        result = await self.deliver(work)
        new_cursor = events[-1].seq
        now_ms = int(time.time() * 1000)
        counters = {f"filtered:{reason}": n for reason, n in work.filtered.items()}
        counters["delivered"] = len(result.delivered)
        for parked in result.parked:
            key = f"parked:{parked.reason.split(':', 1)[0]}"
            counters[key] = counters.get(key, 0) + 1
        latencies = [
            finished - work.received_at_ms[mid]
            for mid, finished in result.delivered.items()
            if mid in work.received_at_ms
        ]
        await asyncio.to_thread(
            self.store.commit_delivery,
            DeliveryCommit(
                destination=self.config.id,
                cursor=new_cursor,
                first_seq=events[0].seq,
                last_seq=new_cursor,
                finished_at_ms=now_ms,
                attempts=result.attempts,
                counters=counters,
                latencies_ms=latencies,
                parked=result.parked,
                cursor_name=self.cursor_name,
            ),
        )
        if self.partition is not None:
            await asyncio.to_thread(self._advance_destination_cursor)
        return new_cursor

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

    # --- sending ---------------------------------------------------------------------------
    def _requests(self, work: Plan, result: StepResult) -> list[Pending]:
        destination = self.config.destination
        pending: list[Pending] = []
        for action_id, items in work.work.items():
            action = destination.actions[action_id]
            size = max(1, min(action.max_batch, self.config.options.batch_size or action.max_batch))
            for chunk in _chunks(items, size, action.max_batch_bytes):
                pending.extend(self._build(action_id, chunk, work, result))
        return pending

    def _build(
        self, action_id: str, chunk: list[Mapped], work: Plan, result: StepResult
    ) -> list[Pending]:
        try:
            requests = self.config.destination.build(action_id, chunk)
        except Exception as exc:  # an unusable mapped payload, or a destination bug
            if len(chunk) > 1:  # find the bad events: the others still go
                return [p for m in chunk for p in self._build(action_id, [m], work, result)]
            log.info("destination %s cannot send %s: %s", self.config.id, chunk[0].message_id, exc)
            self._park(
                result, work, chunk[0].message_id, f"invalid_payload: {exc}", 0, b"{}", b"{}"
            )
            return []
        carried = {i for r in requests for i in r.message_ids}
        now_ms = int(time.time() * 1000)
        for mapped in chunk:  # nothing to send for it (e.g. an identify with nothing to set)
            if mapped.message_id not in carried:
                result.delivered.setdefault(mapped.message_id, now_ms)
        return [Pending(action_id, _carried(r, chunk, len(requests)), r) for r in requests]

    def _park(
        self,
        result: StepResult,
        work: Plan,
        message_id: str,
        reason: str,
        attempts: int,
        request: bytes,
        response: bytes,
    ) -> None:
        stored = work.events.get(message_id)
        if stored is None or any(p.message_id == message_id for p in result.parked):
            return
        result.parked.append(
            NewParked(message_id, stored.seq, reason, attempts, request, response, stored.payload)
        )

    async def deliver(self, work: Plan) -> StepResult:
        result = StepResult()
        pending = self._requests(work, result)
        while pending:
            now = time.monotonic()
            start_at = max(min(p.not_before for p in pending), self.pacer.paused_until)
            if start_at > now:
                await asyncio.sleep(start_at - now)
                continue
            if self.config.destination.any_request_delivers:
                pending = _without_delivered(pending, result)
                if not pending:
                    break
            ready = [p for p in pending if p.not_before <= now]
            if self.breaker.is_open:
                ready = ready[:1]  # half-open: one probe decides
            sent = {id(p) for p in ready}
            waiting = [p for p in pending if id(p) not in sent]
            outcomes = await self._send_all(ready)
            retry: list[Pending] = []
            for item, response, outcome in outcomes:
                if response is None or outcome is None:  # not sent: the circuit opened meanwhile
                    item.not_before = time.monotonic() + self._circuit_wait()
                    retry.append(item)
                    continue
                retry.extend(self._settle(item, response, outcome, work, result))
            pending = waiting + retry
            if pending:
                await self._record_retrying(pending, work)
        if self.config.destination.any_request_delivers:
            result.parked = [p for p in result.parked if p.message_id not in result.delivered]
        else:  # one event, several requests: delivered only if none of them parked it
            for parked in result.parked:
                result.delivered.pop(parked.message_id, None)
        return result

    async def _send_all(
        self, ready: list[Pending]
    ) -> list[tuple[Pending, Response | None, Outcome | None]]:
        limit = asyncio.Semaphore(max(1, self.pacer.concurrency))
        timeout = self.config.timeout_s
        rate = self.config.options.requests_per_s

        async def one(item: Pending) -> tuple[Pending, Response | None, Outcome | None]:
            async with limit:
                if self.breaker.is_open and len(ready) > 1:
                    return item, None, None  # stop hammering: the probe decides
                if rate > 0:
                    now = time.monotonic()
                    slot = max(now, self._next_request_at)
                    self._next_request_at = slot + 1.0 / rate
                    if slot > now:
                        await asyncio.sleep(slot - now)
                item.attempts += 1
                if not item.first_attempt_ms:
                    item.first_attempt_ms = int(time.time() * 1000)
                response = await send(self.session, item.request, timeout)
                try:
                    outcome = self.config.destination.interpret(item.request, response)
                except Exception as exc:
                    outcome = Outcome(Verdict.RETRY, f"could not read the response: {exc}")
                self.breaker.record(outcome.verdict is not Verdict.RETRY)
                return item, response, outcome

        return await asyncio.gather(*(one(p) for p in ready))

    def _settle(
        self,
        item: Pending,
        response: Response,
        outcome: Outcome,
        work: Plan,
        result: StepResult,
    ) -> list[Pending]:
        """Record what happened to one request; return what must be sent again."""
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        result.attempts = max(result.attempts, item.attempts)
        ok = outcome.verdict is Verdict.DELIVERED
        if outcome.verdict is Verdict.RETRY and response.status == 429:
            self.pacer.throttled(now, outcome.retry_after_s)
        elif ok:
            self.pacer.succeeded()
        ids = [m.message_id for m in item.mapped]
        failures = dict(outcome.failures)
        retry_ids: list[str] = []
        if outcome.verdict is Verdict.RETRY:
            parked_here = {m for m, f in failures.items() if f.verdict is Verdict.PARK}
            retry_ids = [m for m in ids if m not in parked_here]
        elif outcome.verdict is Verdict.PARK:
            for mid in ids:
                failures.setdefault(mid, EventFailure(Verdict.PARK, outcome.reason))
        for mid in ids:
            failure = failures.get(mid)
            if failure is None and outcome.verdict is Verdict.DELIVERED:
                result.delivered[mid] = now_ms
            elif failure is not None and failure.verdict is Verdict.PARK:
                exchange = (request_record(item.request), response_record(response))
                self._park(result, work, mid, failure.reason, item.attempts, *exchange)
            elif failure is not None and mid not in retry_ids:
                retry_ids.append(mid)
        if not retry_ids:
            return []
        # Events past the retry window are parked with the last exchange; the rest wait.
        reason = outcome.reason if outcome.verdict is Verdict.RETRY else "partial failure"
        keep = []
        for mapped in item.mapped:
            if mapped.message_id not in retry_ids:
                continue
            received = work.received_at_ms.get(mapped.message_id, now_ms)
            if self.config.retry.expired(received, now_ms):
                why = f"retry_window_exceeded: {reason}"
                exchange = (request_record(item.request), response_record(response))
                self._park(result, work, mapped.message_id, why, item.attempts, *exchange)
            else:
                keep.append(mapped)
        if not keep:
            return []
        delay = self.config.retry.backoff(item.attempts, self._rng)
        if outcome.retry_after_s is not None:
            delay = max(delay, outcome.retry_after_s)
        if self.breaker.is_open:
            delay = max(delay, self._circuit_wait())
        destination = self.config.destination
        if outcome.reason == PAYLOAD_TOO_LARGE and len(keep) > 1:  # halve the batch, resend
            half = len(keep) // 2
            requests = [*destination.build(item.action_id, keep[:half]),
                        *destination.build(item.action_id, keep[half:])]  # fmt: skip
        elif len(keep) == len(item.mapped):
            requests = [item.request]
        else:
            requests = destination.build(item.action_id, keep)
        return [
            Pending(item.action_id, _carried(request, keep, len(requests)), request,
                    item.attempts, now + delay, reason, item.first_attempt_ms)
            for request in requests
        ]  # fmt: skip

    def _circuit_wait(self) -> float:
        """Seconds between probes of an open circuit: 2, 4, 8, ... up to a minute."""
        return min(MAX_CIRCUIT_WAIT_S, 2.0 ** max(self.breaker.opened, 1))

    async def _record_retrying(self, pending: list[Pending], work: Plan) -> None:
        if not self.record_retrying:
            return
        now_ms = int(time.time() * 1000)
        rows = [
            RetryingEvent(
                m.message_id,
                work.events[m.message_id].seq,
                p.first_attempt_ms or now_ms,
                p.attempts,
                now_ms + int(max(p.not_before - time.monotonic(), 0) * 1000),
                p.last_error,
            )
            for p in pending
            if p.attempts
            for m in p.mapped
            if m.message_id in work.events
        ]
        # The step's commit clears these rows (every retrying event is behind the new cursor).
        if rows:
            await asyncio.to_thread(self.store.set_retrying, self.config.id, rows, now_ms=now_ms)

    # --- parked events an operator asked to send again --------------------------------------
    async def resend_parked(self) -> None:
        requested = await asyncio.to_thread(
            self.store.parked, self.config.id, ("retry_requested",), 500
        )
        if not requested:
            return
        by_message: dict[str, ParkedEvent] = {p.message_id: p for p in requested}
        stored = [
            StoredEvent(p.seq, next(iter(self.config.sources), ""), p.message_id, "", None,
                        int(time.time() * 1000), p.payload)
            for p in requested
        ]  # fmt: skip
        work = plan(_all_sources(self.config), stored)
        result = await self.deliver(work)
        resent = [by_message[m].id for m in result.delivered if m in by_message]
        filtered = [p.id for p in requested if p.message_id not in work.events]
        for again in result.parked:
            original = by_message[again.message_id]
            await asyncio.to_thread(
                self.store.repark, original.id, again.reason, original.attempts + again.attempts,
                again.request, again.response,
            )  # fmt: skip
        cursor = await asyncio.to_thread(self.store.get_cursor, self.cursor_name)
        await asyncio.to_thread(
            self.store.commit_delivery,
            DeliveryCommit(
                destination=self.config.id,
                cursor=cursor,
                first_seq=0,
                last_seq=-1,
                finished_at_ms=int(time.time() * 1000),
                attempts=result.attempts,
                counters={"delivered": len(result.delivered), "resent": len(resent)},
                resent_parked_ids=resent + filtered,
                cursor_name=self.cursor_name,
            ),
        )


def _chunks(items: list[Mapped], size: int, max_bytes: int) -> list[list[Mapped]]:
    """Runs of at most `size` events and (for batching actions) about `max_bytes` of JSON."""
    if size == 1:
        return [[m] for m in items]
    chunks: list[list[Mapped]] = []
    current: list[Mapped] = []
    weight = 0
    for mapped in items:
        cost = len(msgspec.json.encode(mapped.payload)) + 1
        if current and (len(current) >= size or weight + cost > max_bytes):
            chunks.append(current)
            current, weight = [], 0
        current.append(mapped)
        weight += cost
    if current:
        chunks.append(current)
    return chunks


def _carried(request: OutRequest, chunk: list[Mapped], requests: int) -> list[Mapped]:
    """The mapped events a request carries: the whole chunk, or those its ids name (in order)."""
    if requests == 1 and len(request.message_ids) == len(chunk):
        return chunk
    by_id: dict[str, list[Mapped]] = {}
    for mapped in chunk:
        by_id.setdefault(mapped.message_id, []).append(mapped)
    carried = []
    for message_id in request.message_ids:
        candidates = by_id.get(message_id)
        if candidates:
            carried.append(candidates.pop(0) if len(candidates) > 1 else candidates[0])
    return carried


def _without_delivered(pending: list[Pending], result: StepResult) -> list[Pending]:
    """Alternatives of an event already delivered are not sent (or retried) any more."""
    kept = []
    for item in pending:
        left = [m for m in item.mapped if m.message_id not in result.delivered]
        if len(left) == len(item.mapped):
            kept.append(item)
        elif left:
            kept.append(dataclasses.replace(item, mapped=left))
    return kept


def _all_sources(config: DestinationConfig) -> DestinationConfig:
    """The same configuration, accepting any source (parked events were already routed once)."""
    return dataclasses.replace(config, sources=frozenset())
