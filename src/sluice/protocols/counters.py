"""Violations counted per (source, event, field, type) in the store's counters table.

The counters are written in the same group commit as the events they describe (no extra write,
exact across collector processes, both store backends); the counter name holds the triple as a
JSON array so any event name or field survives the round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import msgspec

VIOLATION_PREFIX = "protocols_violation:"
OMITTED = "protocols_omitted"  # properties and traits omitted
FORWARDED_PREFIX = "protocols_forwarded:"  # ...blocked or ...violation: events sent on
BLOCKED = "rejected:tracking_plan_blocked"  # also a rejection reason: `sluice rejected` lists them
MAX_LABEL = 200  # an event name or field longer than this is cut in the counter's name


class ViolationCount(NamedTuple):
    source_id: str
    event: str
    field: str
    type: str
    value: int


def violation_counter(event: str, field: str, kind: str) -> str:
    return (
        VIOLATION_PREFIX
        + msgspec.json.encode([event[:MAX_LABEL], field[:MAX_LABEL], kind]).decode()
    )


def violation_counts(
    counters: Mapping[tuple[str, str], int],
    source_id: str | None = None,
    event: str | None = None,
) -> list[ViolationCount]:
    """The violation counters, most frequent first, optionally of one source and one event."""
    rows: list[ViolationCount] = []
    for (source, name), value in counters.items():
        if not name.startswith(VIOLATION_PREFIX) or (source_id and source != source_id):
            continue
        try:
            ev, field, kind = msgspec.json.decode(name[len(VIOLATION_PREFIX) :])
        except (msgspec.DecodeError, ValueError):
            continue
        if event is None or ev == event:
            rows.append(ViolationCount(source, str(ev), str(field), str(kind), value))
    rows.sort(key=lambda r: (-r.value, r.source_id, r.event, r.field, r.type))
    return rows
