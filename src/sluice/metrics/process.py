"""What each HTTP worker process measures itself: ingest latency, responses, commit latency,
the Profile API's refusals.

Why prometheus-client's multiprocess mode for these, and the store for everything else
(cluster.py): a latency is only known to the process that timed it, and `sluice serve` runs
several HTTP worker processes behind one port, so a scrape reaching one of them must see all of
them. The multiprocess mode keeps each process's values in a small memory-mapped file of a
directory shared by the invocation (`SLUICE` sets `PROMETHEUS_MULTIPROC_DIR` to
`<data dir>/run/metrics-<pid of serve>` before the workers start), and the scrape merges the
files. Counts of events (received, stored, delivered, parked, ...) are not kept here: the store
already counts them in the same transaction as the events, exact across processes, nodes and
restarts, at no cost on the hot path.

Only counters and histograms are kept here, which merge by summing: a restarted worker's file
stays and its counts keep adding up (a Prometheus counter must not go backwards).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, values

from sluice.pids import running

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "metrics-"

# Seconds. Ingest answers after the commit's fsync: a few ms normally, up to seconds when the
# disk stalls; the commit is the same fsync seen from the writer thread.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
GROUP_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class ProcessMetrics:
    """The instruments of one HTTP worker process."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        _ensure_value_class()
        self.ingest_seconds = Histogram(
            "sluice_ingest_request_duration_seconds",
            "Tracking API requests: from the first byte read to the answer (after the commit).",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.responses = Counter(
            "sluice_ingest_responses",
            "Tracking API answers by HTTP status (429 and 503 ask the client to retry).",
            ["status"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "sluice_store_commit_duration_seconds",
            "Group commits of the event log: one transaction, fsync included.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_events = Histogram(
            "sluice_store_commit_events",
            "Events per group commit.",
            buckets=GROUP_BUCKETS,
            registry=registry,
        )
        self.profile_api_rate_limited = Counter(
            "sluice_profile_api_rate_limited",
            "Profile API requests answered 429: the token (by id) was over"
            " SLUICE_PROFILE_API_RATE_LIMIT.",
            ["token"],
            registry=registry,
        )
        self.commit_failures = Counter(
            "sluice_store_commit_failures",
            "Group commits the store refused or could not make (their requests got 503 or were"
            " retried one by one).",
            registry=registry,
        )


def multiprocess_dir() -> Path | None:
    """The directory this invocation's processes share their values in, when there is one."""
    path = os.environ.get(MULTIPROC_ENV)
    return Path(path) if path else None


def _ensure_value_class() -> None:
    """Make sure values go to the shared files when the directory is set.

    prometheus-client picks its value class when it is imported; a process that imported it
    before the variable was set (or a test) would keep private values nobody else can read.
    """
    if multiprocess_dir() is not None and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """For `sluice serve`: a fresh directory for this invocation's HTTP workers, exported in the
    environment before they start; directories of invocations that are gone are removed."""
    run = data_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob(DIR_PREFIX + "*"):
        pid = old.name[len(DIR_PREFIX) :]
        if not pid.isdigit() or not running(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(old, ignore_errors=True)
    path = run / f"{DIR_PREFIX}{os.getpid()}"
    path.mkdir()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
