"""What an operator looks at, as JSON-ready documents: status, events, rejected, retrying and
parked items.

The CLI prints these, the admin API returns them and the UI renders them; building them in one
place keeps the three in agreement (a field renamed here is renamed everywhere).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from sluice.config import Settings
from sluice.delivery.stats import destination_stats
from sluice.delivery.worker import WORKER_LEASE_PREFIX
from sluice.spec.jsontext import lenient_decode
from sluice.spec.timestamps import format_ms
from sluice.store.base import ParkedEvent, RetryingEvent, Store, StoredEvent, StoredRejection
from sluice.warehouse.stats import warehouse_stats

NO_SOURCE = "(no source)"  # counters of requests no write key matched


def status_report(settings: Settings, store: Store) -> dict[str, Any]:
    """`sluice status --json`: counters per source, the log's end, delivery and warehouses."""
    by_source: dict[str, dict[str, int]] = {}
    for (source, name), value in store.counters().items():
        by_source.setdefault(source or NO_SOURCE, {})[name] = value
    return {
        "sources": by_source,
        "log_end": store.last_seq(),
        "destinations": destination_stats(store),
        "warehouses": warehouse_stats(settings, store),
        "workers": workers_report(store),
    }


def workers_report(store: Store) -> dict[str, list[str]]:
    """Live workers (by lease) and the consumers each one runs now."""
    now_ms = int(time.time() * 1000)
    workers: dict[str, list[str]] = {}
    for lease in store.leases():
        if lease.expires_at_ms <= now_ms:
            continue
        if lease.name.startswith(WORKER_LEASE_PREFIX):
            workers.setdefault(lease.holder, [])
        elif not lease.name.startswith(("admin:", "replay:")):
            workers.setdefault(lease.holder, []).append(lease.name)
    return {holder: sorted(units) for holder, units in sorted(workers.items())}


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
