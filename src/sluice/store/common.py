"""What every store backend computes the same way, whatever its SQL: kept here once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from sluice.store.base import ConfigObject, NewEvent, SourceRow, latency_bucket


class _SourceBody(msgspec.Struct):
    id: str
    name: str
    write_keys: list[str]
    enabled: bool


_source_decoder = msgspec.json.Decoder(_SourceBody)


def source_rows(objects: Iterable[ConfigObject]) -> list[SourceRow]:
    """The collector's view of the workspace's source documents."""
    result = []
    for obj in objects:
        body = _source_decoder.decode(obj.body)
        result.append(SourceRow(body.id, body.name, tuple(body.write_keys), body.enabled))
    return result


def count_stored(
    counters: dict[tuple[str, str], int], offered: list[NewEvent], stored: list[NewEvent]
) -> None:
    """Add one append's `stored` and `duplicates` per source, and its group commit, in place."""
    stored_by_source = _per_source(stored)
    for source, n_offered in _per_source(offered).items():
        n_stored = stored_by_source.get(source, 0)
        for name, n in (("stored", n_stored), ("duplicates", n_offered - n_stored)):
            if n:
                counters[(source, name)] = counters.get((source, name), 0) + n
    if stored:
        counters[("", "group_commits")] = counters.get(("", "group_commits"), 0) + 1


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
