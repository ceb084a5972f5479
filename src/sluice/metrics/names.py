"""Every metric the store's collector exposes (cluster.py): name, type, help and labels, in one
table, so docs/metrics.md and the dashboard are checked against it (tests/metrics)."""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)


class Spec(NamedTuple):
    name: str  # counters without their `_total`: the library adds it
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: tuple[str, ...] = ()


_SRC = ("source",)
_DEST = ("destination",)
_WH = ("warehouse",)
_PROC = ("holder", "lane", "host")
_SPACE = ("space",)  # the workspace's name (identity/)
_SIDECAR = ("host", "pid")  # the worker process's host and pid

CLUSTER: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("sluice_log_end_position", "gauge", "The event log's last position."),
        Spec("sluice_log_texts_replaced", "counter", "Texts in the SQLite log that are not UTF-8 (not Sluice's writing), read with U+FFFD in place of their bad bytes; each read of one counts."),
        Spec("sluice_log_compiled_reader_failures", "counter", "Processes whose compiled reader of the SQLite log failed: they read it through Python's sqlite3 from then on (slower; their log says why)."),
        Spec("sluice_events_received", "counter", "Events received by the Tracking API, valid or not.", _SRC),
        Spec("sluice_events_stored", "counter", "Events stored in the log, by call type.", ("source", "type")),
        Spec("sluice_events_duplicate", "counter", "Events not stored: their messageId was in the dedupe window.", _SRC),
        Spec("sluice_events_rejected", "counter", "Events refused one by one (invalid), by reason.", ("source", "reason")),
        Spec("sluice_events_throttled", "counter", "Events of requests answered 429 (rate limit, overload).", _SRC),
        Spec("sluice_events_suppressed", "counter", "Events dropped at ingest: their userId is suppressed by a regulation (not stored).", _SRC),
        Spec("sluice_regulations", "gauge", "Privacy regulations by overall status (INITIALIZED, RUNNING, FINISHED, FAILED, ...).", ("status",)),
        Spec("sluice_requests_rejected", "counter", "Whole requests refused, by error code.", ("source", "code")),
        Spec("sluice_webhook_rejected", "counter", "Webhook deliveries refused (not verified, bad body, unknown hook...), by reason; never stored.", ("source", "reason")),
        Spec("sluice_group_commits", "counter", "Group commits that stored events."),
        Spec("sluice_protocols_violations", "counter", "Tracking plan violations (JSON Schema failures), by event, field and type.", ("source", "event", "field", "type")),
        Spec("sluice_protocols_omitted", "counter", "Properties and traits a tracking plan omitted (unplanned, or on violation).", _SRC),
        Spec("sluice_protocols_forwarded", "counter", "Events a tracking plan sent to another source, by kind (blocked, violation).", ("source", "kind")),
        Spec("sluice_destination_delivered", "counter", "Events the destination accepted.", _DEST),
        Spec("sluice_destination_filtered", "counter", "Events not sent to the destination, by reason (filters, consent, integrations object, no action).", ("destination", "reason")),
        Spec("sluice_destination_parked", "counter", "Events parked (given up on, kept for a resend), by reason.", ("destination", "reason")),
        Spec("sluice_destination_parked_events", "gauge", "Events parked now (not resent or dropped yet).", _DEST),
        Spec("sluice_destination_retrying_events", "gauge", "Events in the retry set, by state (waiting: behind an earlier event of their user).", ("destination", "state")),
        Spec("sluice_destination_lag_events", "gauge", "Events the destination's cursor has not passed.", _DEST),
        Spec("sluice_destination_lag_seconds", "gauge", "Age of the oldest event the destination's cursor has not passed.", _DEST),
        Spec("sluice_destination_circuit_open", "gauge", "1 while the destination's circuit breaker is open (every request fails).", _DEST),
        Spec("sluice_destination_paused", "gauge", "1 while the destination's cursor waits (circuit open, retry set full).", _DEST),
        Spec("sluice_delivery_duration_seconds", "histogram", "Time from an event's receipt to its delivery.", _DEST),
        Spec("sluice_archive_lag_events", "gauge", "Events the archive has not written."),
        Spec("sluice_archive_lag_seconds", "gauge", "Age of the oldest event the archive has not written."),
        Spec("sluice_archive_uploads", "counter", "Archive files uploaded to the bucket and verified (SLUICE_ARCHIVE_STORAGE=s3)."),
        Spec("sluice_archive_upload_bytes", "counter", "Bytes of archive files uploaded and verified."),
        Spec("sluice_archive_upload_failures", "counter", "Failed upload attempts (each is retried; the cursor waits)."),
        Spec("sluice_archive_pending_files", "gauge", "Finished archive files waiting to be uploaded."),
        Spec("sluice_archive_upload_failing", "gauge", "1 while uploads fail, by kind (unavailable, credentials, bucket_missing, checksum, error).", ("kind",)),
        Spec("sluice_warehouse_lag_events", "gauge", "Events the warehouse has not loaded (as of its last load).", _WH),
        Spec("sluice_warehouse_lag_seconds", "gauge", "Age of the oldest event the warehouse has not loaded.", _WH),
        Spec("sluice_warehouse_loads", "counter", "Warehouse loads, by outcome (ok, failed).", ("warehouse", "outcome")),
        Spec("sluice_warehouse_load_seconds", "counter", "Time spent loading (divided by the loads: the mean load duration).", _WH),
        Spec("sluice_warehouse_last_load_duration_seconds", "gauge", "How long the last load took.", _WH),
        Spec("sluice_warehouse_last_load_timestamp_seconds", "gauge", "When the last load finished (Unix time).", _WH),
        Spec("sluice_warehouse_rows", "counter", "Rows written to the warehouse.", _WH),
        Spec("sluice_warehouse_events", "counter", "Events read from the log by the warehouse's loads.", _WH),
        Spec("sluice_warehouse_discards", "counter", "Values not loaded (type conflicts), kept in the warehouse's discards.", _WH),
        Spec("sluice_identity_position", "gauge", "The identity graph's position in the log, as its consumer last reported.", _SPACE),
        Spec("sluice_identity_lag_events", "gauge", "Events the identity graph has not read yet.", _SPACE),
        Spec("sluice_identity_merges", "gauge", "Profile merges in the identity graph (a rebuild counts them again).", _SPACE),
        Spec("sluice_identity_merges_refused", "gauge", "Merges the merge-size guard refused while building the graph (a rebuild counts them again).", _SPACE),
        Spec("sluice_identity_ids_demoted", "gauge", "Identifiers dropped from events by limits or the guard while building the graph.", _SPACE),
        Spec("sluice_identity_wal_checkpoints", "counter", "WAL checkpoints of identity.db run beside the identity consumer (SQLite).", _SPACE),
        Spec("sluice_identity_wal_checkpoint_failures", "counter", "identity.db WAL checkpoints that failed (each is retried).", _SPACE),
        Spec("sluice_identity_wal_restarts_refused", "counter", "identity.db WAL past its limit while a reader held it (the WAL grows meanwhile).", _SPACE),
        Spec("sluice_identity_wal_bytes", "gauge", "identity.db's WAL length not yet copied back, as last seen by its checkpointer.", _SPACE),
        Spec("sluice_bridge_sidecar_up", "gauge", "1 while the Node sidecar running Segment's destinations in this worker process is healthy.", _SIDECAR),
        Spec("sluice_bridge_sidecar_resident_memory_bytes", "gauge", "The sidecar's resident memory, as last reported.", _SIDECAR),
        Spec("sluice_bridge_sidecar_restarts", "counter", "How often the sidecar was restarted (crash, limit, no pong) since its worker process started.", _SIDECAR),
        Spec("sluice_bridge_sidecar_report_age_seconds", "gauge", "Seconds since the worker process last reported its sidecar (every 10 s).", _SIDECAR),
        Spec("sluice_worker_leases", "gauge", "Units (consumers, loaders) a worker process holds by lease.", _PROC),
        Spec("sluice_worker_resident_memory_bytes", "gauge", "A worker process's resident memory, as last reported.", _PROC),
        Spec("sluice_worker_cpu_seconds", "counter", "A worker process's CPU time (user + system), as last reported.", _PROC),
        Spec("sluice_worker_restarts", "counter", "How often the supervisor restarted this lane after it died.", _PROC),
        Spec("sluice_worker_report_age_seconds", "gauge", "Seconds since the worker process last reported (it does when it renews its leases).", _PROC),
    )
}  # fmt: skip


def family(name: str) -> CounterMetricFamily | GaugeMetricFamily:
    """An empty counter or gauge of the table, to add samples to."""
    spec = CLUSTER[name]
    kind = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
    assert spec.kind in ("counter", "gauge"), f"{name} is a {spec.kind}"
    return kind(spec.name, spec.help, labels=list(spec.labels))


def histogram(name: str) -> HistogramMetricFamily:
    """An empty histogram of the table."""
    spec = CLUSTER[name]
    assert spec.kind == "histogram", f"{name} is a {spec.kind}"
    return HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
