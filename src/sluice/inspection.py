"""What an operator looks at, as JSON-ready documents: status, events, rejected, retrying and
parked items.

The CLI prints these, the admin API returns them and the UI renders them; building them in one
place keeps the three in agreement (a field renamed here is renamed everywhere).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from sluice.archive.upload import archive_status
from sluice.bridge.location import REPORT_PREFIX as BRIDGE_REPORT_PREFIX
from sluice.config import Settings
from sluice.delivery.stats import destination_stats
from sluice.identity.report import identity_report
from sluice.runtime.lease_runner import WORKER_LEASE_PREFIX
from sluice.spec.jsontext import lenient_decode
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store, StoredEvent
from sluice.store.base_delivery import ParkedEvent, RetryingEvent
from sluice.store.base_event_store import StoredRejection
from sluice.store.sqlite_read import recorded_trouble
from sluice.warehouse.stats import warehouse_stats

NO_SOURCE = "(no source)"  # counters of requests no write key matched


def status_report(settings: Settings, store: Store) -> dict[str, Any]:
    """`sluice status --json`: counters per source, the log's end, delivery and warehouses."""
    by_source: dict[str, dict[str, int]] = {}
    for (source, name), value in store.counters().items():
        by_source.setdefault(source or NO_SOURCE, {})[name] = value
    warehouses = warehouse_stats(settings, store)
    return {
        "sources": by_source,
        "log_end": store.last_seq(),
        "destinations": destination_stats(store),
        "warehouses": warehouses,
        "workers": workers_report(store, warehouses),
        "bridge": bridge_report(store),
        "archive": archive_status(settings, store),
        "identity": identity_report(store, store.last_seq()),
        "regulations": store.regulation_counts(),
        "log_reads": recorded_trouble(store),
    }


def bridge_report(store: Store) -> dict[str, dict[str, Any]]:
    """The Node sidecar of each worker process running Segment's destinations, as it last
    reported (every 10 s while it runs): healthy, its pid, memory and restarts."""
    result: dict[str, dict[str, Any]] = {}
    for unit, state in sorted(store.unit_stats().items()):
        if unit.startswith(BRIDGE_REPORT_PREFIX):
            result[unit[len(BRIDGE_REPORT_PREFIX) :]] = {
                "healthy": bool(state.get("healthy")),
                "node_pid": state.get("pid") or None,
                "rss_mib": round(state.get("rss_kib", 0) / 1024, 1),
                "restarts": state.get("restarts", 0),
                "reported_at": format_ms(state.get("reported_ms", 0)),
            }
    return result


def workers_report(store: Store, warehouses: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Live worker processes (by lease holder): their lane, pid, CPU time and memory as they
    last reported them, and the units each runs now with its lag behind the log's end."""
    now_ms = int(time.time() * 1000)
    end = store.last_seq()
    cursors = store.cursors()
    warehouse_lag = max((int(w.get("lag", 0)) for w in warehouses.values()), default=0)
    workers: dict[str, dict[str, Any]] = {}
    for lease in store.leases():
        if lease.expires_at_ms <= now_ms or lease.name.startswith(("admin:", "replay:")):
            continue
        worker = workers.setdefault(lease.holder, {"lane": None, "units": {}})
        if lease.name.startswith(WORKER_LEASE_PREFIX):
            worker["lane"] = lease.name[len(WORKER_LEASE_PREFIX) :].split(":", 1)[0]
            continue
        lag: int | None = None
        if lease.name in cursors:
            lag = max(end - cursors[lease.name], 0)
        elif lease.name == "warehouses":
            lag = warehouse_lag
        worker["units"][lease.name] = {"lag": lag}
    reports = {r.holder: r for r in store.processes()}
    for holder, worker in workers.items():
        report = reports.get(holder)
        if report is None:
            continue
        worker.update(
            host=report.host,
            pid=report.pid,
            cpu_s=round(report.cpu_ms / 1000, 1),
            rss_mib=round(report.rss_kib / 1024, 1),
            restarts=report.restarts,
            started_at=format_ms(report.started_at_ms),
            reported_at=format_ms(report.updated_at_ms),
        )
        worker["lane"] = worker["lane"] or report.lane
    return {
        holder: {**w, "units": dict(sorted(w["units"].items()))}
        for holder, w in sorted(workers.items(), key=lambda kv: (str(kv[1]["lane"]), kv[0]))
    }


def parked_record(parked: ParkedEvent) -> dict[str, Any]:
    """A parked event: why, and the request and response that failed."""
    return {
        "id": parked.id,
        "destination": parked.destination,
        "messageId": parked.message_id,
        "parkedAt": format_ms(parked.parked_at_ms),
        "reason": parked.reason,
        "attempts": parked.attempts,
        "state": parked.state,
        "request": msgspec.json.decode(parked.request),
        "response": msgspec.json.decode(parked.response),
    }


def retrying_record(destination: str, retrying: RetryingEvent) -> dict[str, Any]:
    """A retry-set row: since when it fails, how often, when it is tried next, the last
    exchange (`waiting`: behind an earlier event of its user, with `ordering: per_user`)."""
    record: dict[str, Any] = {
        "destination": destination,
        "messageId": retrying.message_id,
        "seq": retrying.seq,
        "action": retrying.action or None,
        "state": retrying.state,
        "attempts": retrying.attempts,
        "firstFailure": format_ms(retrying.first_attempt_ms),
        "nextAttempt": format_ms(retrying.next_attempt_ms)
        if retrying.state == "retrying"
        else None,
        "lastError": retrying.last_error,
        "request": msgspec.json.decode(retrying.request),
        "response": msgspec.json.decode(retrying.response),
    }
    return record


def timeline_record(minute_ms: int, counts: dict[str, int]) -> dict[str, Any]:
    """One minute of a destination's delivery timeline."""
    return {"minute": format_ms(minute_ms), **counts}


def rejected_record(item: StoredRejection) -> dict[str, Any]:
    """A rejected item with its reason; the item as text, since it may not even be JSON."""
    return {
        "id": item.id,
        "source": item.source_id,
        "reason": item.reason,
        "detail": item.detail,
        "receivedAt": format_ms(item.received_at_ms),
        "item": item.payload.decode("utf-8", "replace"),
    }


def event_record(stored: StoredEvent) -> dict[str, Any]:
    """A stored event with where it sits in the log, and the event as stored."""
    return {
        "seq": stored.seq,
        "source": stored.source_id,
        "messageId": stored.message_id,
        "type": stored.type,
        "event": stored.event,
        "receivedAt": format_ms(stored.received_at_ms),
        "payload": lenient_decode(stored.payload),
    }
