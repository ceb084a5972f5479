"""What one step of sending gives back: delivered, parked, failed and held events.

`Sender.deliver` (sending.py) fills a `StepResult` as requests are answered; the consumer and
the retry-set bookkeeping (retries.py) read it. Separate from the engine so that what a step
produced can be read without the machinery that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sluice.delivery.plan import Plan
from sluice.destinations.base import Mapped
from sluice.store.base_delivery import NewParked


@dataclass(frozen=True, slots=True)
class Failure:
    """One event (and action) whose request failed with a retryable answer."""

    message_id: str
    action_id: str
    attempts: int
    error: str
    request: bytes
    response: bytes
    retry_after_s: float | None
    first_attempt_ms: int


@dataclass(slots=True)
class StepResult:
    delivered: dict[str, int] = field(default_factory=dict)  # message_id -> finished ms
    parked: list[NewParked] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)  # retry_in_step=False only
    held: list[Mapped] = field(default_factory=list)  # held back by `hold` (per-user order)
    attempts: int = 0  # the attempts the slowest request needed

    def settle(self, any_request_delivers: bool) -> None:
        """One verdict per event: a parked or failed request of an event outweighs a delivered
        one, unless any one request delivers it (classic webhooks to several URLs)."""
        if any_request_delivers:
            self.parked = [p for p in self.parked if p.message_id not in self.delivered]
            self.failed = [f for f in self.failed if f.message_id not in self.delivered]
        else:
            for parked in self.parked:
                self.delivered.pop(parked.message_id, None)
            parked_ids = {p.message_id for p in self.parked}
            self.failed = [f for f in self.failed if f.message_id not in parked_ids]
            for failure in self.failed:
                self.delivered.pop(failure.message_id, None)
        seen: set[tuple[str, str]] = set()
        unique = []
        for failure in self.failed:  # one failure per event and action: its last
            key = (failure.message_id, failure.action_id)
            if key not in seen:
                seen.add(key)
                unique.append(failure)
        self.failed = unique


def park(
    result: StepResult,
    work: Plan,
    message_id: str,
    reason: str,
    attempts: int,
    request: bytes,
    response: bytes,
) -> None:
    """Record that an event is parked (once per event)."""
    stored = work.events.get(message_id)
    if stored is None or any(p.message_id == message_id for p in result.parked):
        return
    attempts += work.prior_attempts.get(message_id, 0)
    result.parked.append(
        NewParked(message_id, stored.seq, reason, attempts, request, response, stored.payload)
    )
