"""Backoff, circuit breaker and pacing are pure: tested without a clock."""

from __future__ import annotations

import random

from sluice.delivery.policy import CircuitBreaker, Pacer, RetryPolicy


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    policy = RetryPolicy(min_backoff_s=1, max_backoff_s=60)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)]:
        for _ in range(50):
            delay = policy.backoff(attempt, rng)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_without_jitter() -> None:
    assert RetryPolicy(min_backoff_s=1, max_backoff_s=10, jitter=False).backoff(3) == 4


def test_retry_window_counts_from_receipt() -> None:
    policy = RetryPolicy(max_age_s=3600)
    assert not policy.expired(received_at_ms=0, now_ms=3_600_000)
    assert policy.expired(received_at_ms=0, now_ms=3_600_001)


def test_circuit_opens_after_consecutive_failures_and_closes_on_success() -> None:
    breaker = CircuitBreaker(failures_to_open=3)
    for _ in range(2):
        breaker.record(False)
    assert not breaker.is_open
    breaker.record(True)
    for _ in range(3):
        breaker.record(False)
    assert breaker.is_open and breaker.opened == 1
    breaker.record(False)  # a request sent before it opened: no change
    assert breaker.opened == 1
    breaker.record(False, probe=True)  # a failed probe: the next one waits longer
    assert breaker.opened == 2
    breaker.record(True)
    assert not breaker.is_open and breaker.opened == 0


def test_pacer_halves_on_429_pauses_for_retry_after_and_recovers() -> None:
    pacer = Pacer(max_concurrency=16)
    pacer.throttled(now=100.0, retry_after_s=5)
    assert pacer.concurrency == 8 and pacer.paused_until == 105.0
    pacer.throttled(now=101.0, retry_after_s=None)
    assert pacer.concurrency == 4 and pacer.paused_until == 105.0
    for _ in range(20):
        pacer.succeeded()
    assert pacer.concurrency == 16
