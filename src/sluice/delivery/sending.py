"""Sending a plan's work to one destination: requests, concurrency, pacing, circuit breaker.

`Sender.deliver(work)` turns mapped events into requests and sends them. What happens to a
retryable failure depends on who asks:

- the live consumer (`retry_in_step=False`) gets every failed event back after one attempt
  (`StepResult.failed`) and moves it to the destination's retry set, so the cursor moves on;
- a replay or an operator's one-off send (`retry_in_step=True`) retries in place with backoff
  until the retry window ends, then parks (a replay has no retry set of its own).

Either way, while the circuit breaker is open nothing more is attempted: requests not yet sent
wait in the step for the breaker's probes (one request at a time, 2 s doubling to a minute), so
a destination that is down holds its consumer's cursor instead of filling its retry set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

import aiohttp

from sluice.delivery.batching import UserKey, carried_events, mapped_chunks
from sluice.delivery.config import DestinationConfig
from sluice.delivery.exchange import (
    MAX_KEPT_BODY,
    SHARED_KEPT_BODY,
    Redactor,
    request_record,
    response_record,
)
from sluice.delivery.plan import Plan
from sluice.delivery.policy import CircuitBreaker, Pacer
from sluice.delivery.sender import send
from sluice.delivery.step_result import Failure, StepResult, park
from sluice.destinations.base import EventFailure, Mapped, Outcome, OutRequest, Response, Verdict

log = logging.getLogger(__name__)

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
    order: int = 0  # its place in the step (log order), kept through retries and rebuilds
    retried: bool = False  # carries events from the retry set (their failures don't open the
    # circuit: a few events failing forever must not pause the whole destination)


class Sender:
    """What one destination's requests share: session, breaker, pacing, rate limit."""

    def __init__(self, config: DestinationConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self.breaker = CircuitBreaker()
        self.pacer = Pacer(max_concurrency=config.options.concurrency)
        self.probe_at = 0.0  # monotonic: while the circuit is open, no probe before this
        self.opened_at_ms = 0  # when the circuit last opened (epoch ms)
        self.last_error = ""
        self._rng = random.Random()
        self._next_request_at = 0.0

    # --- building requests ---------------------------------------------------------------------
    def requests(self, work: Plan, result: StepResult, *, single: bool = False,
                 user_key: UserKey | None = None) -> list[Pending]:  # fmt: skip
        """The plan's mapped events as requests: batches up to the action's limit (one event
        each with `single`); with `user_key`, a user's events are kept in one batch."""
        destination = self.config.destination
        pending: list[Pending] = []
        for action_id, items in work.work.items():
            action = destination.actions[action_id]
            size = max(1, min(action.max_batch, self.config.options.batch_size or action.max_batch))
            if single:
                size = 1
            alone = [m for m in items if m.message_id in work.alone]
            if alone:  # retried more than once: each on its own, so one bad event fails alone
                items = [m for m in items if m.message_id not in work.alone]
                for mapped in alone:
                    pending.extend(self._build(action_id, [mapped], work, result))
            for chunk in mapped_chunks(items, size, action.max_batch_bytes, user_key):
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
            log.debug("destination %s cannot send %s: %s", self.config.id, chunk[0].message_id, exc)
            park(result, work, chunk[0].message_id, f"invalid_payload: {exc}", 0, b"{}", b"{}")
            return []
        carried = {i for r in requests for i in r.message_ids}
        now_ms = int(time.time() * 1000)
        for mapped in chunk:  # nothing to send for it (e.g. an identify with nothing to set)
            if mapped.message_id not in carried:
                result.delivered.setdefault(mapped.message_id, now_ms)
        return [Pending(action_id, carried_events(r, chunk, len(requests)), r) for r in requests]

    # --- sending ---------------------------------------------------------------------------
    async def deliver(
        self,
        work: Plan,
        *,
        retry_in_step: bool,
        single: bool = False,
        user_key: UserKey | None = None,
        hold: Callable[[Mapped], bool] | None = None,
        on_round: Callable[[StepResult], Awaitable[None]] | None = None,
    ) -> StepResult:
        """Send the plan's work; see the module docstring for what a failure becomes.

        `user_key` (ordering per user): at most one request per user is in flight, in log order,
        and once `hold` says a user's events must wait (an earlier one failed), that user's
        later events are not sent but returned in `held`. `on_round` is called after each
        round of sending that leaves work pending, so failures are recorded at once."""
        result = StepResult()
        pending = self.requests(work, result, single=single, user_key=user_key)
        for order, item in enumerate(pending):
            item.order = order
            item.retried = any(m.message_id in work.prior_attempts for m in item.mapped)
        any_delivers = self.config.destination.any_request_delivers
        while pending:
            if hold is not None:
                pending = self._hold_back(pending, hold, work, result)
                if not pending:
                    break
            now = time.monotonic()
            start_at = max(min(p.not_before for p in pending), self.pacer.paused_until)
            if self.breaker.is_open:
                start_at = max(start_at, self.probe_at)
            if start_at > now:
                await asyncio.sleep(start_at - now)
                continue
            if any_delivers:
                pending = _without_delivered(pending, result)
                if not pending:
                    break
            ready = [p for p in pending if p.not_before <= now]
            if user_key is not None:
                ready = _one_per_user(pending, ready, user_key)
            if self.breaker.is_open:
                ready = ready[:1]  # half-open: one probe decides
            sent = {id(p) for p in ready}
            waiting = [p for p in pending if id(p) not in sent]
            outcomes = await self._send_all(ready)
            retry: list[Pending] = []
            for item, response, outcome in outcomes:
                if response is None or outcome is None:  # not sent: the circuit opened meanwhile
                    retry.append(item)
                    continue
                retry.extend(self._settle(item, response, outcome, work, result, retry_in_step))
            pending = sorted(waiting + retry, key=lambda p: p.order)
            if pending and on_round is not None:
                await on_round(result)
        result.settle(any_delivers)
        return result

    def _hold_back(
        self, pending: list[Pending], hold: Callable[[Mapped], bool], work: Plan,
        result: StepResult,
    ) -> list[Pending]:  # fmt: skip
        """Take the events of held users out of the requests not yet sent."""
        kept = []
        for item in pending:
            if item.attempts:
                kept.append(item)
                continue
            held = [m for m in item.mapped if hold(m)]
            if not held:
                kept.append(item)
                continue
            result.held.extend(held)
            left = [m for m in item.mapped if not hold(m)]
            if left:
                rebuilt = self._build(item.action_id, left, work, result)
                for again in rebuilt:
                    again.order = item.order
                kept.extend(rebuilt)
        return kept

    async def _send_all(
        self, ready: list[Pending]
    ) -> list[tuple[Pending, Response | None, Outcome | None]]:
        limit = asyncio.Semaphore(max(1, self.pacer.concurrency))
        timeout = self.config.timeout_s
        destination = self.config.destination
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
                probe = self.breaker.is_open
                item.attempts += 1
                if not item.first_attempt_ms:
                    item.first_attempt_ms = int(time.time() * 1000)
                if destination.runs_code:  # Segment's code makes the requests (bridge/)
                    response = await destination.perform(self.session, item.request, timeout)
                else:
                    response = await send(
                        self.session, item.request, timeout,
                        url_as_built=self.config.destination.urls_as_built,
                    )  # fmt: skip
                try:
                    outcome = destination.interpret(item.request, response)
                except Exception as exc:
                    outcome = Outcome(Verdict.RETRY, f"could not read the response: {exc}")
                self._record(outcome, counts=not item.retried, probe=probe)
                return item, response, outcome

        return await asyncio.gather(*(one(p) for p in ready))

    def _record(self, outcome: Outcome, *, counts: bool = True, probe: bool = False) -> None:
        """Feed the breaker: any success closes it; a failure counts towards opening it unless
        the request carried retries only (a probe's failure always counts)."""
        was_open = self.breaker.is_open
        ok = outcome.verdict is not Verdict.RETRY
        if ok or counts or probe:
            self.breaker.record(ok, probe=probe)
        if self.breaker.is_open:
            if not was_open:
                self.opened_at_ms = int(time.time() * 1000)
            self.last_error = Redactor(self.config.destination.secret_values).error(outcome.reason)
            self.probe_at = time.monotonic() + self.circuit_wait()

    def circuit_wait(self) -> float:
        """Seconds between probes of an open circuit: 2, 4, 8, ... up to a minute."""
        return min(MAX_CIRCUIT_WAIT_S, 2.0 ** max(self.breaker.opened, 1))

    def _settle(
        self,
        item: Pending,
        response: Response,
        outcome: Outcome,
        work: Plan,
        result: StepResult,
        retry_in_step: bool,
    ) -> list[Pending]:
        """Record what happened to one request; return what must be sent again in this step."""
        now = time.monotonic()
        now_ms = int(time.time() * 1000)
        result.attempts = max(result.attempts, item.attempts)
        if outcome.verdict is Verdict.RETRY and response.status == 429:
            self.pacer.throttled(now, outcome.retry_after_s)
        elif outcome.verdict is Verdict.DELIVERED:
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
        if outcome.verdict is Verdict.DELIVERED and not failures:  # the common case, quickly
            for mid in ids:
                result.delivered[mid] = now_ms
            return []
        limit = MAX_KEPT_BODY if len(item.mapped) == 1 else SHARED_KEPT_BODY
        secrets = self.config.destination.secret_values
        exchange = (
            request_record(response.sent or item.request, limit, secrets),
            response_record(response, limit, secrets),
        )
        redact = Redactor(secrets).error  # reasons quote error texts, which may quote the URL
        for mid in ids:
            failure = failures.get(mid)
            if failure is None and outcome.verdict is Verdict.DELIVERED:
                result.delivered[mid] = now_ms
            elif failure is not None and failure.verdict is Verdict.PARK:
                park(result, work, mid, redact(failure.reason), item.attempts, *exchange)
            elif failure is not None and mid not in retry_ids:
                retry_ids.append(mid)
        if not retry_ids:
            return []
        reason = redact(outcome.reason) if outcome.verdict is Verdict.RETRY else "partial failure"
        keep = []
        for mapped in item.mapped:
            if mapped.message_id not in retry_ids:
                continue
            received = work.received_at_ms.get(mapped.message_id, now_ms)
            if self.config.retry.expired(received, now_ms):
                why = f"retry_window_exceeded: {reason}"
                park(result, work, mapped.message_id, why, item.attempts, *exchange)
            else:
                keep.append(mapped)
        if not keep:
            return []
        if not retry_in_step:  # the consumer moves them to the retry set
            result.failed.extend(
                Failure(m.message_id, item.action_id, item.attempts, reason, *exchange,
                        outcome.retry_after_s, item.first_attempt_ms)
                for m in keep
            )  # fmt: skip
            return []
        delay = self.config.retry.backoff(item.attempts, self._rng)
        if outcome.retry_after_s is not None:
            delay = max(delay, outcome.retry_after_s)
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
            Pending(item.action_id, carried_events(request, keep, len(requests)), request,
                    item.attempts, now + delay, reason, item.first_attempt_ms)
            for request in requests
        ]  # fmt: skip


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


def _one_per_user(pending: list[Pending], ready: list[Pending], user_key: UserKey) -> list[Pending]:
    """Of the ready requests, those no earlier pending request shares a user with."""
    ready_ids = {id(p) for p in ready}
    claimed: set[Hashable] = set()
    chosen = []
    for item in pending:
        users = {user_key(m) for m in item.mapped}
        if id(item) in ready_ids and not users & claimed:
            chosen.append(item)
        claimed |= users
    return chosen
