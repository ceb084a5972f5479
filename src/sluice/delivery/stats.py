"""Delivery stats per destination, as `sluice status` and the UI show them."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from sluice.delivery.filters import FilterError, filter_errors, parse_filters
from sluice.delivery.partitions import cursor_name
from sluice.devicemode import is_device_mode
from sluice.store.base import Store
from sluice.store.base_delivery import MINUTE_MS, TIMELINE_COUNTS, TIMELINE_KEEP_MS
from sluice.store.common import minute_of

DEFAULT_TIMELINE_MINUTES = 60
MAX_TIMELINE_MINUTES = TIMELINE_KEEP_MS // MINUTE_MS  # as far back as the store keeps


def percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The bucket bound (ms) under which `fraction` of the delivered events fell."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= fraction * total:
            return bound
    return max(histogram)


def destination_stats(store: Store) -> dict[str, dict[str, Any]]:
    counters = store.delivery_counters()
    retrying = store.retry_counts()
    states = store.consumer_states()
    parked = store.parked_counts(("parked", "retry_requested"))
    log_end = store.last_seq()
    result: dict[str, dict[str, Any]] = {}
    for obj in store.list_config("destination"):
        if is_device_mode(obj.body):
            continue  # runs in the page: nothing delivered here to count
        dest = obj.id
        own = {name: v for (d, name), v in counters.items() if d == dest}
        filtered = {n.partition(":")[2]: v for n, v in own.items() if n.startswith("filtered:")}
        histogram = store.latency_histogram(dest)
        cursor = store.find_cursor(cursor_name(dest))
        result[dest] = {
            "delivered": own.get("delivered", 0),
            "filtered": sum(filtered.values()),
            "filtered_by_reason": filtered,
            "retrying": retrying.get(dest, {}).get("retrying", 0),
            "waiting": retrying.get(dest, {}).get("waiting", 0),
            "parked": parked.get(dest, 0),
            "parked_total": sum(v for n, v in own.items() if n.startswith("parked:")),
            "latency_ms": {
                "p50": percentile(histogram, 0.5),
                "p95": percentile(histogram, 0.95),
                "p99": percentile(histogram, 0.99),
            },
            "lag": None if cursor is None else log_end - cursor,
            "state": _state(states, dest),
            "filter_errors": _filter_errors(obj.body),
        }
    return result


def _filter_errors(body: bytes) -> list[str]:
    """Filters stored before they were checked whose condition does not compile: each drops
    every event (delivery fails closed), so status says so."""
    try:
        doc = msgspec.json.decode(body)
        return filter_errors(parse_filters(doc.get("filters") or []))
    except (msgspec.DecodeError, AttributeError, TypeError, FilterError):
        return []


def _state(states: dict[str, tuple[str, str, int]], destination: str) -> dict[str, Any]:
    """The consumer's state (`running`, or `paused` and why); a partitioned destination is
    paused when any of its partitions is."""
    own = [
        v for k, v in states.items()
        if k == cursor_name(destination) or k.startswith(cursor_name(destination) + "#")
    ]  # fmt: skip
    paused = [v for v in own if v[0] != "running"]
    if paused:
        state, detail, since = paused[0]
        return {"state": state, "detail": detail, "since": since}
    return {"state": "running" if own else "not_started", "detail": "", "since": None}


def recent_timeline(
    store: Store, destination: str, minutes: int, now_ms: int | None = None
) -> list[tuple[int, dict[str, int]]]:
    """The last `minutes` minutes of the destination's timeline, the current minute last.

    Every minute is present (zeros where nothing happened), so a chart or an API client gets a
    steady axis without knowing that the store keeps only the minutes with something in them.
    """
    end = minute_of(int(time.time() * 1000) if now_ms is None else now_ms)
    start = end - (minutes - 1) * MINUTE_MS
    stored = dict(store.delivery_timeline(destination, start))
    return [
        (minute, stored.get(minute) or dict.fromkeys(TIMELINE_COUNTS, 0))
        for minute in range(start, end + MINUTE_MS, MINUTE_MS)
    ]
