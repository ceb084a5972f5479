"""What a consumer step writes to its destination's retry set, and how due retries are planned.

Pure bookkeeping between the sending engine's results (`step_result.py`: which events failed,
were delivered or parked) and the store's rows (`store/retry_set.py`). A retried event is
planned again from the body kept in its row with the destination's configuration of now, so a
changed setting, filter or mapping applies to retries too; only the action that failed is sent
again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sluice.delivery.config import DestinationConfig
from sluice.delivery.partitions import payload_user_hash
from sluice.delivery.plan import Plan, plan
from sluice.delivery.step_result import Failure, StepResult
from sluice.destinations.base import Mapped
from sluice.store.base import StoredEvent
from sluice.store.base_delivery import RetryDelivered, RetryKey, RetryReschedule, RetryRow

WAITING_ERROR = "waiting behind an earlier event of the same user"


@dataclass(slots=True)
class RetryChanges:
    """The retry-set rows one step adds, reschedules, marks delivered and drops."""

    added: list[RetryRow] = field(default_factory=list)
    rescheduled: list[RetryReschedule] = field(default_factory=list)
    delivered: list[RetryDelivered] = field(default_factory=list)
    dropped: list[RetryKey] = field(default_factory=list)

    @property
    def active_delta(self) -> int:
        """How many active rows this makes (added) and settles (delivered, dropped)."""
        return len(self.added) - len(self.delivered) - len(self.dropped)


@dataclass(slots=True)
class DueRetries:
    """Due retry-set rows, planned again: the plan, and the rows of each message id."""

    work: Plan
    rows: dict[str, list[RetryRow]]

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def plan_retries(config: DestinationConfig, rows: Sequence[RetryRow]) -> DueRetries:
    """Plan due rows again from their bodies; only each row's failed action is kept."""
    by_message: dict[str, list[RetryRow]] = {}
    stored: list[StoredEvent] = []
    for row in rows:
        if row.message_id not in by_message:
            stored.append(
                StoredEvent(row.seq, row.source_id, row.message_id, row.type, row.event,
                            row.received_at_ms, row.payload)
            )  # fmt: skip
        by_message.setdefault(row.message_id, []).append(row)
    work = plan(config, stored)
    for action_id, items in list(work.work.items()):
        kept = [m for m in items if _retries_action(by_message.get(m.message_id, ()), action_id)]
        if kept:
            work.work[action_id] = kept
        else:
            del work.work[action_id]
    for message_id, own in by_message.items():
        if message_id in work.events:
            # The retry window counts from the row's start (receipt, or an operator's resend).
            work.received_at_ms[message_id] = min(r.window_start_ms for r in own)
            work.prior_attempts[message_id] = max(r.attempts for r in own)
            if work.prior_attempts[message_id] >= 2:
                work.alone.add(message_id)
    return DueRetries(work, by_message)


def _retries_action(rows: Sequence[RetryRow], action_id: str) -> bool:
    actions = {r.action for r in rows}
    return "" in actions or action_id in actions or not rows


def merge(first: Plan, second: Plan) -> Plan:
    """Both plans' work in one (retries first: they are the older events)."""
    merged = Plan(
        filtered=dict(first.filtered),
        received_at_ms={**second.received_at_ms, **first.received_at_ms},
        events={**second.events, **first.events},
        alone=first.alone | second.alone,
        prior_attempts={**second.prior_attempts, **first.prior_attempts},
        unusable=first.unusable + second.unusable,
    )
    for reason, n in second.filtered.items():
        merged.filtered[reason] = merged.filtered.get(reason, 0) + n
    for source in (first, second):
        for action_id, items in source.work.items():
            merged.work.setdefault(action_id, []).extend(items)
    return merged


class RetryBook:
    """Turns what one round or step of sending did into retry-set changes."""

    def __init__(self, config: DestinationConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()

    def next_attempt_ms(self, attempts: int, retry_after_s: float | None, now_ms: int) -> int:
        delay = self.config.retry.backoff(attempts, self._rng)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return now_ms + int(delay * 1000)

    def failures(
        self,
        failed: Sequence[Failure],
        work: Plan,
        due: DueRetries | None,
        *,
        window_start_ms: int | None = None,
    ) -> RetryChanges:
        """Failed events: new ones join the set, retried ones are rescheduled."""
        now_ms = int(time.time() * 1000)
        changes = RetryChanges()
        for failure in failed:
            rows = due.rows.get(failure.message_id) if due is not None else None
            if rows:
                for row in rows:
                    if row.action not in ("", failure.action_id):
                        continue
                    attempts = row.attempts + failure.attempts
                    changes.rescheduled.append(
                        RetryReschedule(
                            row.seq, row.action, attempts,
                            self.next_attempt_ms(attempts, failure.retry_after_s, now_ms),
                            failure.error, failure.request, failure.response,
                        )
                    )  # fmt: skip
                continue
            stored = work.events.get(failure.message_id)
            if stored is None:
                continue
            changes.added.append(
                RetryRow(
                    self.config.id, stored.seq, failure.action_id, stored.message_id,
                    stored.source_id, stored.type, stored.event, stored.received_at_ms,
                    stored.received_at_ms if window_start_ms is None else window_start_ms,
                    payload_user_hash(stored.payload), "retrying", failure.attempts,
                    failure.first_attempt_ms or now_ms,
                    self.next_attempt_ms(failure.attempts, failure.retry_after_s, now_ms),
                    now_ms, failure.error, failure.request, failure.response, stored.payload,
                )
            )  # fmt: skip
        return changes

    def waiting(self, held: Sequence[Mapped], work: Plan) -> list[RetryRow]:
        """Events held behind their user's retrying event (ordering per user)."""
        now_ms = int(time.time() * 1000)
        rows: dict[tuple[int, str], RetryRow] = {}
        for mapped in held:
            stored = work.events.get(mapped.message_id)
            if stored is None:
                continue
            rows[(stored.seq, "")] = RetryRow(
                self.config.id, stored.seq, "", stored.message_id, stored.source_id,
                stored.type, stored.event, stored.received_at_ms, stored.received_at_ms,
                payload_user_hash(stored.payload), "waiting", 0, now_ms, 0, now_ms,
                WAITING_ERROR, b"{}", b"{}", stored.payload,
            )  # fmt: skip
        return list(rows.values())

    def settled(self, result: StepResult, due: DueRetries, work: Plan) -> RetryChanges:
        """Retried events delivered, parked or now filtered out leave the set."""
        changes = RetryChanges()
        failed = {f.message_id for f in result.failed}
        parked = {p.message_id for p in result.parked}
        for message_id, rows in due.rows.items():
            if message_id in failed:
                continue
            if message_id in result.delivered:
                changes.delivered.extend(
                    RetryDelivered(r.seq, r.action, r.attempts + 1) for r in rows
                )
            elif message_id in parked or message_id not in work.events:
                changes.dropped.extend(r.key for r in rows)
            # else: still pending in the step (not sent); it stays as it is
        return changes
