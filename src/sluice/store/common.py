"""What every store backend computes the same way, whatever its SQL: kept here once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from sluice.store.base_delivery import MINUTE_MS, TIMELINE_COUNTS, TIMELINE_KEEP_MS, latency_bucket
from sluice.store.base_event_store import ConfigObject, NewEvent, SourceRow

STORED_BY_TYPE = "stored:"  # counter name prefix: events stored, by call type


class _SourceBody(msgspec.Struct):
    id: str
    name: str
    write_keys: list[str]
    enabled: bool
    webhook: dict[str, Any] | None = None  # a webhook source's provider, secrets, mappings


_source_decoder = msgspec.json.Decoder(_SourceBody)


def source_rows(objects: Iterable[ConfigObject]) -> list[SourceRow]:
    """The collector's view of the workspace's source documents."""
    result = []
    for obj in objects:
        body = _source_decoder.decode(obj.body)
        result.append(
            SourceRow(body.id, body.name, tuple(body.write_keys), body.enabled, body.webhook)
        )
    return result


def count_stored(
    counters: dict[tuple[str, str], int], offered: list[NewEvent], stored: list[NewEvent]
) -> None:
    """Add one append's `stored` and `duplicates` per source, `stored:<type>` per source and call
    type (for metrics), and its group commit, in place."""
    stored_by_source = _per_source(stored)
    for source, n_offered in _per_source(offered).items():
        n_stored = stored_by_source.get(source, 0)
        for name, n in (("stored", n_stored), ("duplicates", n_offered - n_stored)):
            if n:
                counters[(source, name)] = counters.get((source, name), 0) + n
    if stored:
        counters[("", "group_commits")] = counters.get(("", "group_commits"), 0) + 1
        for (source, call), n in Counter((e.source_id, e.type) for e in stored).items():
            key = (source, STORED_BY_TYPE + call)
            counters[key] = counters.get(key, 0) + n


def _per_source(events: list[NewEvent]) -> dict[str, int]:
    """How many events per source; a group commit nearly always holds one source."""
    if not events:
        return {}
    first = events[0].source_id
    if all(e.source_id == first for e in events):
        return {first: len(events)}
    counts: dict[str, int] = {}
    for e in events:
        counts[e.source_id] = counts.get(e.source_id, 0) + 1
    return counts


def latency_counts(latencies_ms: Sequence[int]) -> list[tuple[int, int]]:
    """(bucket bound, count) of a step's delivery latencies, bounds ascending."""
    buckets: dict[int, int] = {}
    for ms in latencies_ms:
        bound = latency_bucket(ms)
        buckets[bound] = buckets.get(bound, 0) + 1
    return sorted(buckets.items())


def minute_of(ms: int) -> int:
    """The start (epoch ms) of the minute `ms` falls in: the timeline's bucket key."""
    return ms // MINUTE_MS * MINUTE_MS


def timeline_step(counters: Mapping[str, int]) -> tuple[int, int, int]:
    """(delivered, filtered, parked) of one step's counters: every `filtered:<reason>` and
    `parked:<reason>` counts once, whatever the reason."""
    filtered = parked = 0
    for name, n in counters.items():
        if name.startswith("filtered:"):
            filtered += n
        elif name.startswith("parked:"):
            parked += n
    return counters.get("delivered", 0), filtered, parked


def timeline_buckets(
    rows: Iterable[Sequence[int]],
) -> list[tuple[int, dict[str, int]]]:
    """Rows of (minute, delivered, filtered, parked, retrying) as the protocol returns them."""
    return [
        (int(row[0]), {name: int(n) for name, n in zip(TIMELINE_COUNTS, row[1:], strict=True)})
        for row in rows
    ]


class TimelinePruning:
    """When to drop a destination's buckets older than TIMELINE_KEEP_MS: on this process's first
    write to a new minute of it. So the delete (a range of the primary key) runs about once a
    minute per destination, not once per step, and a week of minutes is never outgrown."""

    def __init__(self) -> None:
        self._newest: dict[str, int] = {}
        self._lock = threading.Lock()

    def cutoff(self, destination: str, minute_ms: int) -> int | None:
        """The minute before which to delete, or None while this minute was pruned already."""
        with self._lock:
            if self._newest.get(destination, minute_ms - 1) >= minute_ms:
                return None
            self._newest[destination] = minute_ms
        return minute_ms - TIMELINE_KEEP_MS
