"""What the store knows of the whole cluster, as Prometheus metrics read at scrape time.

Every count here is committed by the process that did the work, in the same transaction as the
work (events stored, delivered, parked), or reported by it right after (warehouse loads,
worker processes): so the values are exact across every process and node, survive restarts,
and cost the hot paths nothing. Each node's `/metrics` shows the same cluster-wide values:
aggregate them with `max` (not `sum`) across instances, or scrape one node for them
(docs/metrics.md). Lags in seconds are computed at the scrape. Names and help: names.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from sluice.archive.upload import FAILURE_KINDS, UPLOAD_UNIT
from sluice.archive.writer import CURSOR as ARCHIVE_CURSOR
from sluice.bridge.location import REPORT_PREFIX as BRIDGE_REPORT_PREFIX
from sluice.delivery.consumer_state import CIRCUIT_OPEN
from sluice.delivery.partitions import cursor_name
from sluice.devicemode import is_device_mode
from sluice.identity.report import identity_report
from sluice.metrics.names import family, histogram
from sluice.protocols.counters import FORWARDED_PREFIX, OMITTED, violation_counts
from sluice.runtime.lease_runner import WORKER_LEASE_PREFIX
from sluice.store.base import Store
from sluice.store.base_delivery import LATENCY_BUCKETS_MS
from sluice.store.common import STORED_BY_TYPE
from sluice.store.sqlite_read import (
    COMPILED_READER_FAILURES,
    TEXTS_REPLACED,
    recorded_trouble,
)
from sluice.warehouse.factory import parse_warehouse_config, warehouse_bodies
from sluice.warehouse.stats import UNIT_PREFIX

NO_SOURCE = "(none)"  # requests no write key matched
# The collectors' counter names (`sluice status`) and the metric each one adds to.
_SOURCE_COUNTERS = {
    "received": "sluice_events_received",
    "duplicates": "sluice_events_duplicate",
    "throttled": "sluice_events_throttled",
    "suppressed": "sluice_events_suppressed",
    "rejected": "sluice_events_rejected",
    "request_rejected": "sluice_requests_rejected",
    "webhook_rejected": "sluice_webhook_rejected",
}


class ClusterCollector(Collector):
    """Reads the store at each scrape (in a thread: endpoint.py)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        store = self.store
        now_ms = int(time.time() * 1000)
        end = store.last_seq()
        position = family("sluice_log_end_position")
        position.add_metric([], end)
        yield position
        yield from _log_read_metrics(store)
        counters = store.counters()
        yield from _source_metrics(counters)
        yield from _protocols_metrics(counters)
        lag = _Lag(store, end, now_ms)
        yield from _destination_metrics(store, lag)
        archive = store.find_cursor(ARCHIVE_CURSOR)
        if archive is not None:
            events, seconds = lag.of(archive)
            for name, value in (("events", events), ("seconds", seconds)):
                metric = family(f"sluice_archive_lag_{name}")
                metric.add_metric([], value)
                yield metric
        yield from _archive_upload_metrics(store)
        yield from _warehouse_metrics(store, lag)
        yield from _worker_metrics(store, now_ms)
        yield from _bridge_metrics(store, now_ms)
        yield from _identity_metrics(store, end)
        regulations = family("sluice_regulations")
        for status, n in sorted(store.regulation_counts().items()):
            regulations.add_metric([status], n)
        yield regulations


def _protocols_metrics(counters: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """Tracking plans' counters (protocols/counters.py): violations, omitted, forwarded."""
    violations = family("sluice_protocols_violations")
    for row in violation_counts(counters):
        violations.add_metric([row.source_id, row.event, row.field, row.type], row.value)
    omitted = family("sluice_protocols_omitted")
    forwarded = family("sluice_protocols_forwarded")
    for (source_id, name), value in sorted(counters.items()):
        if name == OMITTED:
            omitted.add_metric([source_id], value)
        elif name.startswith(FORWARDED_PREFIX):
            forwarded.add_metric([source_id, name[len(FORWARDED_PREFIX) :]], value)
    yield from (violations, omitted, forwarded)


def _log_read_metrics(store: Store) -> Iterator[Metric]:
    """What reads of the SQLite log met (store/sqlite_read.py): 0 on any other store."""
    counts = recorded_trouble(store)
    for name, key in (
        ("sluice_log_texts_replaced", TEXTS_REPLACED),
        ("sluice_log_compiled_reader_failures", COMPILED_READER_FAILURES),
    ):
        metric = family(name)
        metric.add_metric([], counts[key])
        yield metric


class _Lag:
    """How far a cursor is behind the log's end, in events and in seconds (the age of the oldest
    event it has not passed: 0 when it is at the end)."""

    def __init__(self, store: Store, end: int, now_ms: int) -> None:
        self.store, self.end, self.now_ms = store, end, now_ms

    def of(self, position: int) -> tuple[int, float]:
        if position >= self.end:
            return 0, 0.0
        oldest = self.store.read_after(position, 1)
        seconds = max(self.now_ms - oldest[0].received_at_ms, 0) / 1000 if oldest else 0.0
        return self.end - position, seconds


def _source_metrics(counters: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """The collectors' counters per source (`sluice status`), by Prometheus names."""
    families = {name: family(name) for name in _SOURCE_COUNTERS.values()}
    stored = family("sluice_events_stored")
    commits = family("sluice_group_commits")
    by_type: dict[str, int] = {}
    totals: dict[str, int] = {}
    for (source_id, name), value in sorted(counters.items()):
        source = source_id or NO_SOURCE
        kind, _, detail = name.partition(":")
        if name.startswith(STORED_BY_TYPE):
            stored.add_metric([source, detail], value)
            by_type[source] = by_type.get(source, 0) + value
        elif name == "stored":
            totals[source] = value
        elif name == "unauthorized":
            families["sluice_requests_rejected"].add_metric([source, "unauthorized"], value)
        elif name == "group_commits":
            commits.add_metric([], value)
        elif kind in _SOURCE_COUNTERS:
            families[_SOURCE_COUNTERS[kind]].add_metric(
                [source] + ([detail] if detail else []), value
            )
    # Events stored before the store counted them by type (older versions) keep their total.
    for source, total in totals.items():
        if total > by_type.get(source, 0):
            stored.add_metric([source, "unknown"], total - by_type.get(source, 0))
    yield families["sluice_events_received"]
    yield stored
    yield from (m for name, m in families.items() if name != "sluice_events_received")
    yield commits


def _destination_metrics(store: Store, lag: _Lag) -> Iterator[Metric]:
    counters = store.delivery_counters()
    retrying = store.retry_counts()
    parked_now = store.parked_counts(("parked", "retry_requested"))
    states = store.consumer_states()
    cursors = store.cursors()
    names = (
        "delivered", "filtered", "parked", "parked_events", "retrying_events", "lag_events",
        "lag_seconds", "circuit_open", "paused",
    )  # fmt: skip
    f = {name: family(f"sluice_destination_{name}") for name in names}
    latency = histogram("sluice_delivery_duration_seconds")
    for obj in store.list_config("destination"):
        if is_device_mode(obj.body):
            continue  # runs in the page
        dest = obj.id
        own = {name: v for (d, name), v in counters.items() if d == dest}
        f["delivered"].add_metric([dest], own.get("delivered", 0))
        for name, value in sorted(own.items()):
            kind, _, reason = name.partition(":")
            if kind in ("filtered", "parked"):
                f[kind].add_metric([dest, reason], value)
        f["parked_events"].add_metric([dest], parked_now.get(dest, 0))
        for state in ("retrying", "waiting"):
            f["retrying_events"].add_metric([dest, state], retrying.get(dest, {}).get(state, 0))
        cursor = cursors.get(cursor_name(dest))
        if cursor is not None:
            events, seconds = lag.of(cursor)
            f["lag_events"].add_metric([dest], events)
            f["lag_seconds"].add_metric([dest], seconds)
        prefix = cursor_name(dest)
        own_states = [v for k, v in states.items() if k == prefix or k.startswith(prefix + "#")]
        circuit = any(detail.startswith(CIRCUIT_OPEN) for _, detail, _ in own_states)
        f["circuit_open"].add_metric([dest], int(circuit))
        f["paused"].add_metric([dest], int(any(s != "running" for s, _, _ in own_states)))
        latency.add_metric([dest], _buckets(store.latency_histogram(dest)), None)
    yield from f.values()
    yield latency


def _buckets(histogram: dict[int, int]) -> list[tuple[str, float]]:
    """The store's per-bucket counts (upper bounds in ms) as cumulative Prometheus buckets."""
    result: list[tuple[str, float]] = []
    seen = 0
    for bound in LATENCY_BUCKETS_MS:
        seen += histogram.get(bound, 0)
        result.append((f"{bound / 1000:g}", seen))
    result.append(("+Inf", sum(histogram.values())))
    return result


def _warehouse_metrics(store: Store, lag: _Lag) -> Iterator[Metric]:
    stats = store.unit_stats()
    names = (
        "lag_events", "lag_seconds", "loads", "load_seconds", "last_load_duration_seconds",
        "last_load_timestamp_seconds", "rows", "events", "discards",
    )  # fmt: skip
    f = {name: family(f"sluice_warehouse_{name}") for name in names}
    for body in warehouse_bodies(store):
        try:
            warehouse = parse_warehouse_config(body).id
        except Exception:  # an unreadable stored warehouse: `sluice status` names it
            continue
        own = stats.get(UNIT_PREFIX + warehouse, {})
        behind, age = lag.of(own.get("position", 0))
        f["lag_events"].add_metric([warehouse], behind)
        f["lag_seconds"].add_metric([warehouse], age)
        f["loads"].add_metric([warehouse, "ok"], own.get("loads", 0))
        f["loads"].add_metric([warehouse, "failed"], own.get("load_failures", 0))
        f["load_seconds"].add_metric([warehouse], own.get("load_ms", 0) / 1000)
        for name in ("rows", "events", "discards"):
            f[name].add_metric([warehouse], own.get(name, 0))
        if "last_load_ms" in own:
            duration = own.get("last_duration_ms", 0) / 1000
            f["last_load_duration_seconds"].add_metric([warehouse], duration)
            f["last_load_timestamp_seconds"].add_metric([warehouse], own["last_load_ms"] / 1000)
    yield from f.values()


def _worker_metrics(store: Store, now_ms: int) -> Iterator[Metric]:
    """Per live worker process: the units it holds by lease, its memory, CPU and restarts."""
    leases: dict[str, int] = {}
    lanes: dict[str, str] = {}
    for lease in store.leases():
        if lease.expires_at_ms <= now_ms or lease.name.startswith(("admin:", "replay:")):
            continue
        if lease.name.startswith(WORKER_LEASE_PREFIX):
            lanes[lease.holder] = lease.name[len(WORKER_LEASE_PREFIX) :].split(":", 1)[0]
        else:
            leases[lease.holder] = leases.get(lease.holder, 0) + 1
    names = ("leases", "resident_memory_bytes", "cpu_seconds", "restarts", "report_age_seconds")
    f = {name: family(f"sluice_worker_{name}") for name in names}
    reported: set[str] = set()
    # Every report: a process that stopped or died under its supervisor is removed at once, one
    # whose node vanished stays with its age growing (what to alert on) until the store forgets
    # it after a day (store/processes.py).
    for report in store.processes():
        reported.add(report.holder)
        labels = [report.holder, lanes.get(report.holder, report.lane), report.host]
        f["leases"].add_metric(labels, leases.get(report.holder, 0))
        f["resident_memory_bytes"].add_metric(labels, report.rss_kib * 1024)
        f["cpu_seconds"].add_metric(labels, report.cpu_ms / 1000)
        f["restarts"].add_metric(labels, report.restarts)
        f["report_age_seconds"].add_metric(labels, max(now_ms - report.updated_at_ms, 0) / 1000)
    for holder, count in leases.items():  # holders that report no process (older workers)
        if holder not in reported:
            f["leases"].add_metric([holder, lanes.get(holder, ""), ""], count)
    yield from f.values()


def _bridge_metrics(store: Store, now_ms: int) -> Iterator[Metric]:
    """Per worker process running Segment's destinations: its Node sidecar as last reported
    (bridge/location.py; removed when the process stops)."""
    names = ("up", "resident_memory_bytes", "restarts", "report_age_seconds")
    f = {name: family(f"sluice_bridge_sidecar_{name}") for name in names}
    for unit, state in sorted(store.unit_stats().items()):
        if not unit.startswith(BRIDGE_REPORT_PREFIX):
            continue
        host, _, pid = unit[len(BRIDGE_REPORT_PREFIX) :].rpartition(":")
        labels = [host, pid]
        f["up"].add_metric(labels, 1 if state.get("healthy") else 0)
        f["resident_memory_bytes"].add_metric(labels, state.get("rss_kib", 0) * 1024)
        f["restarts"].add_metric(labels, state.get("restarts", 0))
        age = max(now_ms - state.get("reported_ms", now_ms), 0) / 1000
        f["report_age_seconds"].add_metric(labels, age)
    yield from f.values()


def _archive_upload_metrics(store: Store) -> Iterator[Metric]:
    """The archive's uploads to its bucket, as the writer last reported (archive/upload.py);
    nothing when the archive is a local folder."""
    stats = store.unit_stats().get(UPLOAD_UNIT)
    if stats is None:
        return
    for name in ("uploads", "upload_bytes", "upload_failures", "pending_files"):
        metric = family(f"sluice_archive_{name}")
        metric.add_metric([], stats.get(name, 0))
        yield metric
    failing = family("sluice_archive_upload_failing")
    kind = stats.get("failure_kind", 0)
    for index, name in enumerate(FAILURE_KINDS):
        if name:
            failing.add_metric([name], 1 if index == kind else 0)
    yield failing


def _identity_metrics(store: Store, end: int) -> Iterator[Metric]:
    """Each space's identity graph and identity.db's checkpoints, as the consumer last reported
    (identity/report.py); nothing before it first ran."""
    graphs = identity_report(store, end)
    if not graphs:
        return
    fields = {
        "sluice_identity_position": "position",
        "sluice_identity_lag_events": "lag",
        "sluice_identity_merges": "merges",
        "sluice_identity_merges_refused": "merges_refused",
        "sluice_identity_ids_demoted": "ids_demoted",
    }
    wal_fields = {  # SQLite's identity.db only: none for a graph on PostgreSQL
        "sluice_identity_wal_checkpoints": "wal_checkpoints",
        "sluice_identity_wal_checkpoint_failures": "wal_checkpoint_failures",
        "sluice_identity_wal_restarts_refused": "wal_restarts_refused",
        "sluice_identity_wal_bytes": "wal_bytes",
    }
    for name, field in (*fields.items(), *wal_fields.items()):
        metric = family(name)
        for space, graph in graphs.items():
            if name in fields or graph["wal"]:
                metric.add_metric([space], graph[field])
        yield metric
