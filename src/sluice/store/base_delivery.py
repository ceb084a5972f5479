"""Delivery state's part of the store protocol (`DeliveryState`), with its records and figures.

What a consumer step commits (`DeliveryCommit`), the retry set's and parked events' rows, the
latency histogram's buckets and the delivery timeline's counts. Apart from the log's part
(`base_event_store.py`) because only delivery, what shows it (status, trace, the UI, metrics)
and the backends' delivery state (`sqlite_delivery.py`, `postgres_delivery.py`) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from sluice.store.base_event_store import StoredEvent

LATENCY_BUCKETS_MS = (
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
    1_800_000, 3_600_000, 14_400_000,
)  # fmt: skip


# The delivery timeline: per destination and minute, what its steps delivered, filtered and
# parked, and the most events it had retrying at once, for "what happened when" charts.
TIMELINE_COUNTS = ("delivered", "filtered", "parked", "retrying")
MINUTE_MS = 60_000
TIMELINE_KEEP_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class NewParked:
    """An event a destination will not get without an operator: why, and the failed exchange."""

    message_id: str
    seq: int
    reason: str
    attempts: int
    request: bytes  # JSON: method, url, headers, body (text)
    response: bytes  # JSON: status, headers, body (text) or error
    payload: bytes  # the event as stored in the log


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    id: int
    destination: str
    message_id: str
    seq: int
    parked_at_ms: int
    reason: str
    attempts: int
    request: bytes
    response: bytes
    payload: bytes
    state: str  # "parked", "retry_requested" or "resent"


@dataclass(frozen=True, slots=True)
class RetryingEvent:
    """A retry-set row as operators see it (`sluice trace`, `sluice retrying`, the UI)."""

    message_id: str
    seq: int
    first_attempt_ms: int  # when its delivery first failed
    attempts: int
    next_attempt_ms: int
    last_error: str
    action: str = ""  # the action that failed ("" for every action of the event)
    state: str = "retrying"  # "retrying", "waiting" (behind its user's event) or "delivered"
    request: bytes = b"{}"  # the last failed exchange
    response: bytes = b"{}"
    updated_at_ms: int = 0  # the last attempt (when it was delivered, for "delivered")


class RetryKey(NamedTuple):
    """One retry-set row of a destination: an event (its log position) and an action."""

    seq: int
    action: str


class RetryRow(NamedTuple):
    """A whole retry-set row: the event (with its body), where its retries stand, the last
    failed exchange. `user_hash` is the event's user hashed as partitions hash it."""

    destination: str
    seq: int
    action: str
    message_id: str
    source_id: str
    type: str
    event: str | None
    received_at_ms: int
    window_start_ms: int  # the retry window counts from here (receipt, or an operator's resend)
    user_hash: int
    state: str
    attempts: int
    first_failure_ms: int
    next_attempt_ms: int
    updated_at_ms: int
    last_error: str
    request: bytes
    response: bytes
    payload: bytes

    @property
    def key(self) -> RetryKey:
        return RetryKey(self.seq, self.action)


@dataclass(frozen=True, slots=True)
class RetryReschedule:
    """A retry that failed again: its new attempt count, due time and exchange."""

    seq: int
    action: str
    attempts: int
    next_attempt_ms: int
    last_error: str
    request: bytes
    response: bytes


@dataclass(frozen=True, slots=True)
class RetryDelivered:
    seq: int
    action: str
    attempts: int


@dataclass(slots=True)
class DeliveryCommit:
    """What one consumer step writes atomically: its new cursor and what happened on the way."""

    destination: str
    cursor: int | None  # the consumer's position after this step (None: leave it as it is)
    first_seq: int  # the range of log positions this step covered (for `sluice trace`)
    last_seq: int
    finished_at_ms: int
    attempts: int  # attempts the slowest request of the step needed
    counters: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[int] = field(default_factory=list)
    parked: list[NewParked] = field(default_factory=list)
    resent_parked_ids: list[int] = field(default_factory=list)
    # The retry set (store/retry_set.py): failures that will be tried again, added or replaced;
    # retries that failed again, were delivered, or left the set (parked, filtered).
    retries: list[RetryRow] = field(default_factory=list)
    retries_rescheduled: list[RetryReschedule] = field(default_factory=list)
    retries_delivered: list[RetryDelivered] = field(default_factory=list)
    retries_dropped: list[RetryKey] = field(default_factory=list)
    retrying_now: int | None = None  # the set's size after this commit (the timeline's gauge)
    # The cursor to move: "destination:<id>" unless the destination is split into partitions
    # ("destination:<id>#<k>/<n>", each claimed by a worker of its own).
    cursor_name: str | None = None

    @property
    def consumer(self) -> str:
        return self.cursor_name or f"destination:{self.destination}"


def latency_bucket(ms: int) -> int:
    """The upper bound of the histogram bucket `ms` falls in."""
    for bound in LATENCY_BUCKETS_MS:
        if ms <= bound:
            return bound
    return LATENCY_BUCKETS_MS[-1] * 10


class DeliveryState(Protocol):
    """Cursors with their side tables: retrying, parked, per-step ranges, counters, latency."""

    def commit_delivery(self, commit: DeliveryCommit) -> None: ...

    def retrying(
        self,
        destination: str | None = None,
        limit: int | None = None,
        *,
        states: Sequence[str] = ("retrying", "waiting"),
    ) -> list[tuple[str, RetryingEvent]]:
        """Retry-set rows in these states, by destination and log order."""
        ...

    def retries_for_message(self, message_id: str) -> list[tuple[str, RetryingEvent]]: ...

    def retry_counts(self, destination: str | None = None) -> dict[str, dict[str, int]]:
        """Active retry-set rows per destination and state."""
        ...

    def due_retries(
        self, destination: str, now_ms: int, limit: int, partition: tuple[int, int] | None = None
    ) -> list[RetryRow]: ...

    def next_retry_at(self, destination: str) -> int | None: ...

    def retry_users(
        self, destination: str, partition: tuple[int, int] | None = None
    ) -> dict[int, int]: ...

    def failed_seqs_after(self, destination: str, seq: int) -> set[int]: ...

    def oldest_retrying_seq(self) -> int | None: ...

    def retry_destinations(self) -> list[str]: ...

    def retry_now(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        now_ms: int = 0,
        failed_since_ms: int | None = None,
    ) -> int: ...

    def park_retrying(
        self,
        destination: str | None,
        message_ids: Sequence[str] = (),
        *,
        reason: str = "parked_by_operator",
        now_ms: int,
    ) -> int: ...

    def release_waiting(self, destination: str, *, now_ms: int) -> int: ...

    def drop_retry_set(self, destination: str) -> int: ...

    def set_consumer_state(self, consumer: str, state: str, detail: str, since_ms: int) -> None: ...

    def consumer_states(self) -> dict[str, tuple[str, str, int]]:
        """{consumer: (state, detail, since ms)} as consumers last wrote them."""
        ...

    def parked(
        self,
        destination: str | None = None,
        states: Sequence[str] = ("parked",),
        limit: int = 100,
        *,
        newest_first: bool = False,
    ) -> list[ParkedEvent]: ...

    def parked_counts(self, states: Sequence[str] = ("parked",)) -> dict[str, int]:
        """Parked events per destination in these states (a count, no rows read)."""
        ...

    def parked_for_message(self, message_id: str) -> list[ParkedEvent]: ...

    def request_parked_retry(self, destination: str | None, ids: Sequence[int] = ()) -> int:
        """Mark parked events for the worker to send again; returns how many."""
        ...

    def repark(
        self, parked_id: int, reason: str, attempts: int, request: bytes, response: bytes
    ) -> None:
        """A resend of a parked event failed again: back to parked with the new exchange."""
        ...

    def delivery_counters(self) -> dict[tuple[str, str], int]: ...

    def latency_histogram(self, destination: str) -> dict[int, int]: ...

    def delivery_timeline(
        self, destination: str, since_ms: int
    ) -> list[tuple[int, dict[str, int]]]:
        """Per-minute buckets from the one holding `since_ms` on, oldest first: (minute start in
        epoch ms, counts by `TIMELINE_COUNTS` name). Minutes with nothing to count are absent;
        buckets are kept `TIMELINE_KEEP_MS`."""
        ...

    def delivery_step_for(self, destination: str, seq: int) -> tuple[int, int] | None:
        """(finished_at_ms, attempts) of the step that covered `seq`, if any."""
        ...

    def find_events(self, message_id: str) -> list[StoredEvent]:
        """Every stored event with this messageId (a scan of the log: for tracing, not hot)."""
        ...
