"""What the collector does with a plan's verdict on one event: count its violations, send
"Violation Generated" tracks and blocked events to the sources chosen for them, and keep a
blocked event out of its source's log (stored as a rejection, reason `tracking_plan_blocked`,
so `sluice rejected` shows it with its `context.protocols`).

Forwarded events are appended as they are: they are not checked against a plan again, as
Segment's forwarded events cannot be blocked again.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from sluice.protocols.counters import BLOCKED, FORWARDED_PREFIX, OMITTED, violation_counter
from sluice.protocols.enforce import Enforcer, Outcome
from sluice.store.base import AppendBatch, NewEvent
from sluice.store.base_event_store import Rejection

_encode = msgspec.json.encode
BLOCKED_REASON = "tracking_plan_blocked"
VIOLATION_USER = "schema-violations"
_NAMESPACE = uuid.UUID("6b0b8a4e-4a1c-4a5e-9a36-7f3c2f0d9b11")


def record(
    batch: AppendBatch,
    enforcer: Enforcer,
    item: dict[str, Any],
    outcome: Outcome,
    received_at_ms: int,
    max_bytes: int,
) -> bool:
    """Account for `outcome` in `batch`; True when the event is stored in its own source."""
    source_id = enforcer.source_id
    settings = enforcer.settings
    for violation in outcome.violations:
        batch.count(
            source_id, violation_counter(outcome.label, violation["field"], violation["type"])
        )
    if outcome.omitted:
        batch.count(source_id, OMITTED, len(outcome.omitted))
    target = settings.forward_violations_to
    if target and outcome.violations:
        for index, violation in enumerate(outcome.violations):
            batch.events.append(_violation_event(enforcer, item, violation, index, received_at_ms))
        batch.count(source_id, FORWARDED_PREFIX + "violation", len(outcome.violations))
    if outcome.blocked is None:
        return True
    payload = _encode(item)
    batch.count(source_id, BLOCKED)
    detail = outcome.blocked
    if outcome.violations:
        detail += ": " + "; ".join(f"{v['field']} {v['type']}" for v in outcome.violations)
    batch.rejections.append(
        Rejection(source_id, BLOCKED_REASON, detail[:300], received_at_ms, payload[:max_bytes])
    )
    forward = settings.forward_blocked_to
    if forward:
        event = item.get("event")
        batch.events.append(
            NewEvent(forward, item["messageId"], item["type"],
                     event if isinstance(event, str) else None, received_at_ms, payload)
        )  # fmt: skip
        batch.count(source_id, FORWARDED_PREFIX + "blocked")
    return False


def _violation_event(
    enforcer: Enforcer,
    item: dict[str, Any],
    violation: dict[str, str],
    index: int,
    received_at_ms: int,
) -> NewEvent:
    """Segment's "Violation Generated" track; its messageId is derived from the event's, so a
    client's retry of the same event is deduplicated like the event itself."""
    message_id = str(uuid.uuid5(_NAMESPACE, f"{item['messageId']}\0{index}"))
    context = item.get("context") if isinstance(item.get("context"), dict) else {}
    app = context.get("app") if isinstance(context, dict) else None
    plan = enforcer.plan
    name = item.get("event") if item["type"] == "track" else item.get("name")
    body = {
        "type": "track",
        "event": "Violation Generated",
        "userId": VIOLATION_USER,
        "messageId": message_id,
        "timestamp": item.get("receivedAt"),
        "receivedAt": item.get("receivedAt"),
        "forwardedFromProject": enforcer.source_id,
        "properties": {
            "appVersion": app.get("version") if isinstance(app, dict) else None,
            "eventMessageID": item["messageId"],
            "eventName": name,
            "eventSentAt": item.get("sentAt"),
            "eventTimestamp": item.get("timestamp"),
            "eventType": item["type"],
            "sourceID": enforcer.source_id,
            "sourceName": enforcer.source_id,
            "sourceSlug": enforcer.source_id,
            "trackingPlanID": plan.plan_id,
            "trackingPlanName": plan.name,
            "violationDescription": violation["description"],
            "violationField": violation["field"],
            "violationType": violation["type"],
        },
        "context": {"library": {"name": "sluice-protocols"}},
    }
    target = enforcer.settings.forward_violations_to
    assert target is not None
    return NewEvent(
        target, message_id, "track", "Violation Generated", received_at_ms, _encode(body)
    )
