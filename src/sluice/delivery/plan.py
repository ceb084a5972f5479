"""Decide, for a run of log events, what a destination gets: filtered (and why) or mapped work.

Pure: the same events and configuration always give the same plan, which is what lets
`sluice trace` explain a decision after the fact by planning the one event again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sluice.delivery.config import DestinationConfig
from sluice.delivery.filters import apply_filters
from sluice.delivery.partitions import Partition, payload_partition
from sluice.delivery.routing import consent_block, integrations_block
from sluice.destinations.base import Mapped
from sluice.store.base import StoredEvent

NO_MATCHING_MAPPING = "no_matching_mapping"
NOT_CONNECTED = "source_not_connected"
_decode = msgspec.json.Decoder().decode


@dataclass(slots=True)
class Plan:
    """Filtered counts by reason, and per action the mapped events to send."""

    filtered: dict[str, int] = field(default_factory=dict)
    work: dict[str, list[Mapped]] = field(default_factory=dict)
    received_at_ms: dict[str, int] = field(default_factory=dict)
    events: dict[str, StoredEvent] = field(default_factory=dict)
    alone: set[str] = field(default_factory=set)  # message ids to send one per request
    # Events that cannot be planned at all (a stored body that does not decode, a rule that
    # fails on it): parked with the error, never a crash of the consumer.
    unusable: list[tuple[StoredEvent, str]] = field(default_factory=list)
    prior_attempts: dict[str, int] = field(default_factory=dict)  # retries: attempts so far

    def filter(self, reason: str) -> None:
        self.filtered[reason] = self.filtered.get(reason, 0) + 1


def decide(
    config: DestinationConfig, event: dict[str, Any], source_id: str = ""
) -> tuple[str | None, list[tuple[str, Mapped]]]:
    """Why the event is not sent (None if it is), and the (action, mapped) work it makes;
    `source_id`: the event's source, whose destination-scoped transformations apply."""
    reason = consent_block(event, config.consent_categories) or integrations_block(
        event, config.names
    )
    if reason is not None:
        return reason, []
    routed: dict[str, Any] | None = event
    if config.filters:
        routed, reason = apply_filters(config.filters, event)
        if routed is None:
            return reason or "filtered", []
    assert routed is not None
    if config.stage is not None:  # destination-scoped transformations, PII rule
        config.stage(routed, source_id)
    message_id = str(routed.get("messageId", ""))
    work: list[tuple[str, Mapped]] = []
    for mapping in config.mappings:
        if mapping.trigger(routed):
            # The first payload may share objects with the event; later ones get their own,
            # so a destination changing one payload cannot change another.
            payload = (mapping.evaluate_copy if work else mapping.evaluate)(routed)
            if payload is not None:
                work.append((mapping.action.id, Mapped(message_id, payload, routed)))
    if not work:
        return NO_MATCHING_MAPPING, []
    return None, work


def plan(
    config: DestinationConfig, events: Iterable[StoredEvent], partition: Partition | None = None
) -> Plan:
    """What to send of `events`; with a partition (k, N), only that partition's users."""
    result = Plan()
    sources = config.sources
    for stored in events:
        if sources and stored.source_id not in sources:
            continue  # not this destination's traffic: neither sent nor counted
        try:
            if (
                partition is not None
                and payload_partition(stored.payload, partition[1]) != partition[0]
            ):
                continue  # another partition's consumer sends (and counts) it
            reason, work = decide(config, _decode(stored.payload), stored.source_id)
        except Exception as exc:  # one event's fault must not stop the others
            if partition is None or stored.seq % partition[1] == partition[0]:
                result.unusable.append((stored, f"{type(exc).__name__}: {exc}"[:500]))
            continue
        if reason is not None:
            result.filter(reason)
            continue
        result.received_at_ms[stored.message_id] = stored.received_at_ms
        result.events[stored.message_id] = stored
        for action_id, mapped in work:
            result.work.setdefault(action_id, []).append(mapped)
    return result
