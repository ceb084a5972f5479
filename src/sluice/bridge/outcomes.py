"""Segment's answers, turned into Sluice's delivery verdicts (the table in docs/bridge.md).

The verdict rules are the native destinations' (`destinations/base.py`): retryable statuses
and network errors retry, other 4xx park. On top of them, from what the bridge can see:
errors Segment's code threw are judged by their name, status and `retry` flag; an error with
no status (a TypeError...) is a bug in destination code that will not heal within the retry
window, so it parks as `bridge error: <name>: <message>`; and once a non-GET request of an
execute succeeded, a failure of that execute parks instead of retrying, because retrying re-runs
the whole perform and would repeat the write (unless the destination is known idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence

from sluice.bridge.results import EXECUTED, NOT_SUBSCRIBED, EventStatus, ExecuteResult, ThrownError
from sluice.destinations.base import (
    RETRYABLE_STATUSES,
    EventFailure,
    Outcome,
    Verdict,
    retry_after_seconds,
)

# Destinations whose performs can run again without a duplicate write (upserts keyed by the
# event, or an API that deduplicates on an id Segment's mapping sends): a retry of a partly
# done execute is safe there.
IDEMPOTENT_DESTINATIONS = frozenset(
    {
        # $insert_id (the messageId by default) is deduplicated by Mixpanel. Not Amplitude:
        # its presets map no insert_id, so a resent event is a second event there.
        "mixpanel",
    }
)

# Thrown by Segment's code (or node-fetch through the proxy) for transient trouble.
RETRYABLE_ERRORS = frozenset(
    {
        "RetryableError",
        "TimeoutError",  # the request client's own timeout
        "SelfTimeoutError",
        "RequestTimeoutError",
        "RequestClientError",  # the request was aborted
        "FetchError",  # the fetch proxy's network error (timeout, connection refused...)
        "AbortError",
    }
)
# The event itself is wrong: sending it again cannot help.
VALIDATION_ERRORS = frozenset(
    {
        "PayloadValidationError",
        "AggregateAjvError",
        "ValidationError",
        "InvalidAudienceMembershipError",
    }
)
NOT_RETRIED_AFTER_WRITE = (
    " (not retried: a non-GET request of this execution had already succeeded)"
)


def outcome_of(
    result: ExecuteResult,
    message_ids: Sequence[str],
    *,
    destination: str,
    idempotent: bool | None = None,
) -> Outcome:
    """The verdict for the events of one execute (`message_ids` in the order sent).

    `idempotent` overrides the allow-list for this destination (None: use the list)."""
    safe_to_rerun = destination in IDEMPOTENT_DESTINATIONS if idempotent is None else idempotent
    retry_after = _retry_after(result)
    if not result.ok:
        verdict, reason = error_verdict(result.error or ThrownError("Error", "no error given"))
        if verdict is Verdict.RETRY and result.non_get_succeeded and not safe_to_rerun:
            return Outcome(Verdict.PARK, reason + NOT_RETRIED_AFTER_WRITE)
        return Outcome(verdict, reason, retry_after if verdict is Verdict.RETRY else None)
    if result.multistatus is not None:
        return _multistatus(result.multistatus, message_ids, retry_after)
    if EXECUTED in result.outputs:
        last = result.last_exchange
        return Outcome(Verdict.DELIVERED, f"HTTP {last.status}" if last else "executed")
    if NOT_SUBSCRIBED in result.outputs:
        return Outcome(Verdict.PARK, "the event does not match the subscription")
    output = next((o for o in result.outputs if o), "no output")
    return Outcome(Verdict.PARK, f"bridge error: {output}")


def error_verdict(error: ThrownError) -> tuple[Verdict, str]:
    """Retry or park for an error Segment's code threw, and the reason to record."""
    status = error.status
    if error.name in VALIDATION_ERRORS:
        return Verdict.PARK, f"{error.name}: {error.message}"
    if error.retry is False:
        return Verdict.PARK, _described(error)
    if error.retry is True or error.name in RETRYABLE_ERRORS:
        return Verdict.RETRY, _described(error)
    if status is None:
        return Verdict.PARK, f"bridge error: {error.name}: {error.message}"
    if status in RETRYABLE_STATUSES or status >= 500:
        return Verdict.RETRY, _described(error)
    return Verdict.PARK, _described(error)


def status_verdict(entry: EventStatus) -> Verdict:
    """One multistatus entry: 2xx delivered, retryable statuses retry, the rest park."""
    if 200 <= entry.status < 300:
        return Verdict.DELIVERED
    if entry.status in RETRYABLE_STATUSES or entry.status >= 500:
        return Verdict.RETRY
    return Verdict.PARK


def _multistatus(
    statuses: Sequence[EventStatus], message_ids: Sequence[str], retry_after: float | None
) -> Outcome:
    failures: dict[str, EventFailure] = {}
    delivered = 0
    for index, message_id in enumerate(message_ids):
        if index >= len(statuses):
            failures[message_id] = EventFailure(
                Verdict.PARK, "bridge error: no status for this event"
            )
            continue
        entry = statuses[index]
        verdict = status_verdict(entry)
        if verdict is Verdict.DELIVERED:
            delivered += 1
        else:
            failures[message_id] = EventFailure(verdict, _entry_reason(entry))
    if delivered or not failures:
        return Outcome(Verdict.DELIVERED, f"{delivered} of {len(message_ids)} delivered",
                       retry_after if failures else None, failures)  # fmt: skip
    retrying = [f for f in failures.values() if f.verdict is Verdict.RETRY]
    first = (retrying or list(failures.values()))[0]
    verdict = Verdict.RETRY if retrying else Verdict.PARK
    return Outcome(verdict, first.reason, retry_after if retrying else None, failures)


def _entry_reason(entry: EventStatus) -> str:
    kind = f" {entry.errortype}" if entry.errortype else ""
    message = f": {entry.errormessage}" if entry.errormessage else ""
    return f"HTTP {entry.status}{kind}{message}"


def _described(error: ThrownError) -> str:
    status = f"HTTP {error.status} " if error.status else ""
    return f"{status}{error.name}: {error.message}"


def _retry_after(result: ExecuteResult) -> float | None:
    """`Retry-After` of the last proxied answer that asked to slow down."""
    for exchange in reversed(result.exchanges):
        if exchange.status in (429, 503):
            return retry_after_seconds(exchange.response_headers)
    return None
