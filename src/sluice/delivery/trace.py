"""Where one event went: for every destination of its source, what happened to it.

Routing is a pure function of the event and the configuration, so "filtered" is explained by
planning the event again; delivered, retrying and parked come from the delivery state. Shared by
`sluice trace` and (later) the admin API and UI.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.delivery.partitions import cursor_name
from sluice.delivery.plan import decide
from sluice.errors import SluiceError
from sluice.spec.timestamps import format_ms
from sluice.store.base import Store, StoredEvent


def event_hops(store: Store, stored: StoredEvent) -> list[dict[str, Any]]:
    event = msgspec.json.decode(stored.payload)
    retrying = {
        (dest, r.message_id): r for dest, r in store.retrying() if r.message_id == stored.message_id
    }
    parked = {p.destination: p for p in store.parked_for_message(stored.message_id)}
    hops: list[dict[str, Any]] = []
    for obj in store.list_config("destination"):
        hop: dict[str, Any] = {"destination": obj.id}
        try:
            config = compile_destination(obj.body)
        except (DestinationConfigError, SluiceError) as exc:
            hops.append({**hop, "status": "not_configured", "detail": str(exc)})
            continue
        if config.sources and stored.source_id not in config.sources:
            continue
        hop["type"] = config.type
        cursor = store.find_cursor(cursor_name(obj.id))
        if obj.id in parked:
            p = parked[obj.id]
            hop.update(
                status="parked" if p.state != "resent" else "delivered_after_resend",
                at=format_ms(p.parked_at_ms),
                reason=p.reason,
                attempts=p.attempts,
                request=msgspec.json.decode(p.request),
                response=msgspec.json.decode(p.response),
            )
        elif (obj.id, stored.message_id) in retrying:
            r = retrying[(obj.id, stored.message_id)]
            hop.update(
                status="retrying",
                attempts=r.attempts,
                next_attempt=format_ms(r.next_attempt_ms),
                last_error=r.last_error,
            )
        elif cursor is None or cursor < stored.seq:
            hop["status"] = "pending" if config.enabled else "destination_disabled"
        else:
            reason, _ = decide(config, event)
            step = store.delivery_step_for(obj.id, stored.seq)
            if reason is not None:
                hop.update(status="filtered", reason=reason)
            elif step is None:
                hop["status"] = "not_sent"  # the destination was connected after this event
            else:
                hop.update(status="delivered", at=format_ms(step[0]), attempts=step[1])
        hops.append(hop)
    return hops


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
