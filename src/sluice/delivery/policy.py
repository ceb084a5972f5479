"""How hard to try: retry backoff, the circuit breaker, and adaptive pacing after 429s.

Policies are data with named defaults and pure functions, so the consumer's behaviour under
failure can be tested without a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_RETRY_WINDOW_S = 4 * 3600.0  # Segment retries for 4 hours, then gives up
DEFAULT_MIN_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 300.0
DEFAULT_FAILURES_TO_OPEN = 5
DEFAULT_MAX_RETRY_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Jittered exponential backoff within a retry window counted from the event's receipt."""

    max_age_s: float = DEFAULT_RETRY_WINDOW_S
    min_backoff_s: float = DEFAULT_MIN_BACKOFF_S
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S
    jitter: bool = True

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_backoff_s, self.min_backoff_s * 2.0 ** max(attempt - 1, 0))
        if not self.jitter:
            return ceiling
        # "Equal jitter": at least half the ceiling, so retries never bunch up at zero.
        spread: float = (rng or random).uniform(0, ceiling / 2)
        return ceiling / 2 + spread

    def expired(self, received_at_ms: int, now_ms: int) -> bool:
        return now_ms - received_at_ms > self.max_age_s * 1000


@dataclass(slots=True)
class CircuitBreaker:
    """Stops sending to an endpoint that keeps failing; one probe at a time decides when it's back.

    Closed: requests flow. After `failures_to_open` failed requests in a row it opens: the
    consumer sends nothing and waits (its events stay in the log, none are dropped). When the
    wait ends it sends one probe (the oldest pending request): success closes the circuit,
    failure opens it again for longer.
    """

    failures_to_open: int = DEFAULT_FAILURES_TO_OPEN
    consecutive_failures: int = 0
    opened: int = 0  # how many times in a row it opened (for the cool-down's growth)

    @property
    def is_open(self) -> bool:
        return self.consecutive_failures >= self.failures_to_open

    def record(self, ok: bool, *, probe: bool = False) -> None:
        """One request's outcome; `probe`: it was sent while the circuit was open."""
        if ok:
            self.consecutive_failures = 0
            self.opened = 0
        else:
            self.consecutive_failures += 1
            if self.consecutive_failures == self.failures_to_open or (probe and self.is_open):
                self.opened += 1  # it opens, or a probe failed: the next probe waits longer


@dataclass(slots=True)
class Pacer:
    """Additive-increase, multiplicative-decrease concurrency after 429s, and Retry-After pauses."""

    max_concurrency: int
    concurrency: int = 0
    paused_until: float = 0.0  # monotonic seconds

    def __post_init__(self) -> None:
        self.concurrency = self.concurrency or self.max_concurrency

    def throttled(self, now: float, retry_after_s: float | None) -> None:
        self.concurrency = max(1, self.concurrency // 2)
        if retry_after_s is not None:
            wait = min(retry_after_s, DEFAULT_MAX_RETRY_AFTER_S)
            self.paused_until = max(self.paused_until, now + wait)

    def succeeded(self) -> None:
        if self.concurrency < self.max_concurrency:
            self.concurrency += 1
