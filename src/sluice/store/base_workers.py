"""What workers keep in the store beside delivery state, as parts of the store protocol.

Leases on consumers (work sharing) with the log's retention, what each worker process reports of
itself, batch units' stats and destinations' refreshed OAuth tokens: small protocols, leases
implemented per backend (`sqlite_leases.py`, `postgres_leases.py`), the others once for both
(`processes.py`, `unit_stats.py`, `oauth_tokens.py`). Apart from the log's and delivery state's
parts so that the workers' own bookkeeping reads on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


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
