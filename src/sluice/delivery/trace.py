"""Where one event went: for every destination of its source, what happened to it.

Routing is a pure function of the event and the configuration, so "filtered" is explained by
planning the event again; delivered, retrying (from the moment of the failure) and parked come
from the delivery state, and "pending" says why when the destination's consumer is paused. Shared by
`sluice trace` and (later) the admin API and UI.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.delivery.partitions import cursor_name
from sluice.delivery.plan import decide
from sluice.devicemode import is_device_mode
from sluice.errors import SluiceError
from sluice.spec.jsontext import lenient_decode
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store, StoredEvent
from sluice.store.base_delivery import RetryingEvent
from sluice.transform.stages import destination_stages


def event_hops(store: Store, stored: StoredEvent) -> list[dict[str, Any]]:
    event = lenient_decode(stored.payload)
    retries: dict[str, RetryingEvent] = {}
    for dest, r in store.retries_for_message(stored.message_id):
        if r.seq == stored.seq and (dest not in retries or r.state != "delivered"):
            retries[dest] = r  # an action still retrying outweighs one delivered
    parked = {p.destination: p for p in store.parked_for_message(stored.message_id)}
    states = store.consumer_states()
    hops: list[dict[str, Any]] = []
    stages = destination_stages(store)
    for obj in store.list_config("destination"):
        hop: dict[str, Any] = {"destination": obj.id}
        if is_device_mode(obj.body):
            continue  # runs in the page: the event reached Sluice from it, not the other way
        try:
            config = compile_destination(obj.body, stages.get(obj.id))
        except (DestinationConfigError, SluiceError) as exc:
            hops.append({**hop, "status": "not_configured", "detail": str(exc)})
            continue
        if config.sources and stored.source_id not in config.sources:
            continue
        hop["type"] = config.type
        cursor = store.find_cursor(cursor_name(obj.id))
        p = parked.get(obj.id)
        retry = retries.get(obj.id)
        if p is not None and (p.state != "resent" or retry is None):
            hop.update(
                status="parked" if p.state != "resent" else "delivered_after_resend",
                at=format_ms(p.parked_at_ms),
                reason=p.reason,
                attempts=p.attempts,
                request=msgspec.json.decode(p.request),
                response=msgspec.json.decode(p.response),
            )
            if p.state == "retry_requested":
                hop["resend"] = "requested"
        elif retry is not None and retry.state == "delivered":
            hop.update(
                status="delivered", at=format_ms(retry.updated_at_ms), attempts=retry.attempts
            )
        elif retry is not None:
            hop.update(retry_hop(retry))
        elif cursor is None or cursor < stored.seq:
            hop["status"] = "pending" if config.enabled else "destination_disabled"
            state = states.get(cursor_name(obj.id))
            if config.enabled and state is not None and state[0] != "running":
                hop["paused"] = state[1]
        else:
            try:
                # Its own copy: a destination's transformations change the event in place.
                fresh = lenient_decode(stored.payload) if config.stage is not None else event
                reason, _ = decide(config, fresh, stored.source_id)
            except Exception as exc:  # an event no rule can read: delivery parked it
                reason = f"unreadable_event: {type(exc).__name__}"
            step = store.delivery_step_for(obj.id, stored.seq)
            if reason is not None:
                hop.update(status="filtered", reason=reason)
            elif step is None:
                hop["status"] = "not_sent"  # the destination was connected after this event
            else:
                hop.update(status="delivered", at=format_ms(step[0]), attempts=step[1])
        hops.append(hop)
    return hops


def retry_hop(r: RetryingEvent) -> dict[str, Any]:
    """A retry-set row as trace shows it: retrying (or waiting behind its user), since when,
    how many attempts, when the next one is, and the last failed exchange."""
    hop: dict[str, Any] = {
        "status": r.state,
        "attempts": r.attempts,
        "first_failure": format_ms(r.first_attempt_ms),
        "last_error": r.last_error,
    }
    if r.state == "retrying":
        hop["next_attempt"] = format_ms(r.next_attempt_ms)
    if r.action:
        hop["action"] = r.action
    if r.attempts:
        hop["request"] = msgspec.json.decode(r.request)
        hop["response"] = msgspec.json.decode(r.response)
    return hop


def trace_message(store: Store, message_id: str) -> list[dict[str, Any]]:
    """Every stored event with this messageId, each with its hops."""
    return [
        {
            "messageId": s.message_id,
            "source": s.source_id,
            "seq": s.seq,
            "type": s.type,
            "event": s.event,
            "receivedAt": format_ms(s.received_at_ms),
            "destinations": event_hops(store, s),
        }
        for s in store.find_events(message_id)
    ]
