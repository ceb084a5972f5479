"""The store protocol: what every backend (SQLite now, PostgreSQL later) provides.

The store owns three things: the event log (append-only, ordered by `seq`), the control plane
(the workspace: sources, destinations, warehouses, tracking plans) and counters. Collectors append
through `append`, consumers read the log with `read_after` from a cursor they commit with
`commit_cursor`. Backends are synchronous; async callers run them on a worker thread.

Cursor contract (so a PostgreSQL backend with concurrent writers fits without change): `read_after`
only returns events whose sequence number is final, i.e. no event with a smaller `seq` can appear
later. SQLite has a single writer, so every committed `seq` is final; PostgreSQL must hold back rows
above the oldest in-flight transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


class NewEvent(NamedTuple):
    """One normalised event ready to append; `payload` is its JSON encoding.

    A tuple so that a backend can hand a batch of them to its driver as rows, unchanged.
    """

    source_id: str
    message_id: str
    type: str
    event: str | None
    received_at_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """One item refused by validation, kept for inspection."""

    source_id: str
    reason: str
    detail: str
    received_at_ms: int
    payload: bytes


@dataclass(slots=True)
class AppendBatch:
    """What one group commit writes: events, rejected items and counter increments."""

    events: list[NewEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, source_id: str, name: str, n: int = 1) -> None:
        key = (source_id, name)
        self.counters[key] = self.counters.get(key, 0) + n


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append: events stored and events dropped as duplicates."""

    stored: int
    duplicates: int


class StoredEvent(NamedTuple):
    """One event as read back from the log (a tuple: consumers create millions of them)."""

    seq: int
    source_id: str
    message_id: str
    type: str
    event: str | None
    received_at_ms: int
    payload: bytes


# A driver's row tuple as a `StoredEvent`, all in C (`StoredEvent(*row)` runs a Python
# `__new__` a row: ~2 s of CPU per 1,000,000 rows here).
stored_event = functools.partial(tuple.__new__, StoredEvent)


@dataclass(frozen=True, slots=True)
class StoredRejection:
    id: int
    source_id: str
    reason: str
    detail: str
    received_at_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A source as the collector needs it: its write keys and whether it accepts events."""

    id: str
    name: str
    write_keys: tuple[str, ...]
    enabled: bool
    # A webhook source (workspace `webhook:`): its provider, secrets and mappings. Its write
    # keys are then the tokens of its hook URL, not keys for the Tracking API.
    webhook: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ConfigObject:
    """One control-plane object (a source, destination, ...) stored as a JSON document."""

    kind: str
    id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for reading the newest events (CLI `sluice events`, UI debugger)."""

    limit: int = 20
    source_id: str | None = None
    type: str | None = None
    event: str | None = None
    after_seq: int = 0


class EventStore(Protocol):
    """The durable log, control plane and counters, behind one interface."""

    # --- event log -------------------------------------------------------------------------
    def append(self, batch: AppendBatch) -> AppendResult:
        """Write one group of events atomically; return only after a durable commit.

        Events whose `(source's workspace, message_id)` was seen within the dedupe window are
        dropped and counted as duplicates. Counters and rejections commit in the same transaction.
        """
        ...

    def warm_up(self) -> None:
        """Prepare what the first append would (the dedupe window's ids, on SQLite), without
        blocking other writers; the collector calls it as it starts. A no-op where nothing is
        kept in memory (PostgreSQL deduplicates in the database)."""
        ...

    def read_after(self, seq: int, limit: int) -> list[StoredEvent]:
        """Events with `seq` greater than the given one, oldest first (consumers with cursors)."""
        ...

    def newest(self, query: EventQuery) -> list[StoredEvent]:
        """The newest events matching the query, newest first."""
        ...

    def rejections(self, limit: int, source_id: str | None = None) -> list[StoredRejection]:
        """The newest rejected items, newest first."""
        ...

    def last_seq(self) -> int:
        """The highest sequence number in the log (0 when empty)."""
        ...

    # --- cursors ---------------------------------------------------------------------------
    def get_cursor(self, consumer: str) -> int: ...

    def find_cursor(self, consumer: str) -> int | None:
        """The consumer's position, or None when it never had one."""
        ...

    def commit_cursor(self, consumer: str, seq: int) -> None: ...

    # --- counters --------------------------------------------------------------------------
    def counters(self) -> dict[tuple[str, str], int]:
        """All counters as `{(source_id, name): value}`."""
        ...

    # --- control plane ---------------------------------------------------------------------
    def config_version(self) -> int:
        """A number that changes whenever the control plane changes (cheap to poll)."""
        ...

    def list_config(self, kind: str | None = None) -> list[ConfigObject]: ...

    def replace_config(self, objects: Iterable[ConfigObject]) -> None:
        """Make the control plane hold exactly these objects (one transaction)."""
        ...

    def put_config(self, obj: ConfigObject) -> None: ...

    def sources(self) -> Sequence[SourceRow]: ...

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None: ...


# --- delivery state ---------------------------------------------------------------------------
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


# --- work sharing and retention ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lease:
    """Who runs a consumer (`name`, e.g. "destination:hooks#0/2", "archive") and until when."""

    name: str
    holder: str  # a worker's id: "<hostname>:<pid>:<random>"
    expires_at_ms: int  # by the store's clock (the database's, on PostgreSQL)


class Leases(Protocol):
    """Consumers are claimed by lease so that one consumer never runs in two workers at once.

    A worker claims each consumer it wants to run and renews the claim (a heartbeat) well within
    the lease period; a dead worker's leases expire and another worker's next claim takes them.
    Expiry is judged by the store's own clock, so workers' clocks may differ.
    """

    def claim_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease; True when `holder` holds it for `ttl_s` from now.

        Succeeds when the lease is free, expired, or already held by `holder`.
        """
        ...

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (a clean shutdown), if `holder` holds it."""
        ...

    def leases(self) -> list[Lease]:
        """Every lease, live or expired (for `sluice status`)."""
        ...

    def cursors(self) -> dict[str, int]:
        """Every consumer's committed position."""
        ...

    def trim_log(self, up_to_seq: int, received_before_ms: int) -> int:
        """Drop events with `seq <= up_to_seq` received before the given time; returns how many.

        Never blocks appends for long: backends drop whole ranges (partitions on PostgreSQL),
        never row by row under a lock the collector needs.
        """
        ...


@dataclass(frozen=True, slots=True)
class ProcessReport:
    """One worker process as it last reported itself."""

    holder: str  # its lease holder id
    lane: str  # what it runs: "delivery", "batch" (runtime/units.py)
    host: str
    pid: int
    started_at_ms: int
    cpu_ms: int  # user + system CPU time since it started
    rss_kib: int
    restarts: int  # how often its supervisor restarted this lane after a crash
    updated_at_ms: int  # by the reporting process's clock


class ProcessReports(Protocol):
    """What each worker process reports of itself (store/processes.py), for `sluice status`."""

    def report_process(self, report: ProcessReport) -> None:
        """Record (upsert) a process's report; reports not renewed for a day are dropped."""
        ...

    def processes(self) -> list[ProcessReport]:
        """Every reported process, live or stale (compare `updated_at_ms`)."""
        ...

    def forget_process(self, holder: str) -> int:
        """Drop a process known to be gone: its report and its leases (free for a claim now)."""
        ...


class UnitStats(Protocol):
    """What batch units report of their work, for metrics (store/unit_stats.py)."""

    def record_unit_stats(
        self, unit: str, now_ms: int, add: Mapping[str, int], set_to: Mapping[str, int]
    ) -> None:
        """Add to counters and set gauges of one unit (e.g. "warehouse:main"), in one write."""
        ...

    def unit_stats(self) -> dict[str, dict[str, int]]: ...

    def forget_unit_stats(self, unit: str) -> None: ...


class OAuthTokens(Protocol):
    """Tokens a destination's own code refreshed (store/oauth_tokens.py)."""

    def save_oauth_tokens(
        self, destination: str, access_token: str, refresh_token: str | None, now_ms: int
    ) -> None: ...

    def oauth_tokens(self, destination: str) -> tuple[str, str | None] | None: ...

    def forget_oauth_tokens(self, destination: str) -> None: ...


# --- privacy ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RegulationRow:
    id: str
    type: str
    subject_type: str
    subject_ids: tuple[str, ...]  # empty once the regulation is over
    subject_count: int
    source_id: str | None
    status: str
    detail: str
    created_at_ms: int
    updated_at_ms: int
    finished_at_ms: int | None
    not_before_ms: int


@dataclass(frozen=True, slots=True)
class LegRow:
    regulation_id: str
    target: str
    status: str
    detail: str
    removed: int
    updated_at_ms: int


class Regulations(Protocol):
    """Privacy regulations, their legs and the suppressed user ids (store/regulations.py)."""

    keeps_newest_event: bool

    def create_regulation(
        self, row: RegulationRow, *, suppress: Sequence[str] = (), unsuppress: Sequence[str] = ()
    ) -> None: ...

    def regulation(self, regulation_id: str) -> RegulationRow | None: ...

    def regulations(
        self, *, status: str | None = None, source_id: str | None = None, limit: int = 100
    ) -> list[RegulationRow]: ...

    def pending_regulations(self) -> list[RegulationRow]: ...

    def regulation_counts(self) -> dict[str, int]: ...

    def set_regulation_status(
        self, regulation_id: str, status: str, detail: str, now_ms: int, *, over: bool = False
    ) -> None: ...

    def record_leg(self, leg: LegRow) -> None: ...

    def regulation_legs(self, regulation_id: str) -> list[LegRow]: ...

    def suppressed_keys(self) -> frozenset[str]: ...

    def suppressions(self, limit: int = 1000) -> list[tuple[str, str, int]]: ...

    def scan_payloads(
        self, table: str, after: tuple[Any, ...] | None, limit: int
    ) -> list[tuple[tuple[Any, ...], str | None, bytes]]: ...

    def delete_rows(self, table: str, keys: Sequence[tuple[Any, ...]]) -> int: ...

    def erase_freed(self) -> bool: ...


class Store(
    EventStore,
    DeliveryState,
    Leases,
    ProcessReports,
    UnitStats,
    OAuthTokens,
    Regulations,
    Protocol,
):
    """Everything a backend provides: the log, the control plane, delivery state and leases."""
