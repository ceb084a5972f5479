"""What a destination would do with one event, computed by the delivery engine's own code.

The preview compiles the destination document being edited (`compile_destination`), runs the
planner's `decide` on the event (consent, `integrations`, filters in Segment's order, mapping
triggers) and the destination's request builder on the mapped payloads: the verdict and the
requests shown are exactly what the worker would produce, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sluice.delivery.config import DestinationConfigError, compile_destination
from sluice.delivery.plan import NO_MATCHING_MAPPING, NOT_CONNECTED, decide
from sluice.delivery.routing import BUNDLED, CONSENT, INTEGRATIONS_DISABLED
from sluice.destinations.base import OutRequest
from sluice.errors import SluiceError

REASONS = {
    CONSENT: "the user did not consent to this destination's categories",
    BUNDLED: "the device sent it already (`_metadata.bundled`)",
    INTEGRATIONS_DISABLED: "the event's `integrations` object turns this destination off",
    NO_MATCHING_MAPPING: "no mapping's trigger matches it",
    NOT_CONNECTED: "its source is not connected to this destination",
}
RULE_PREFIXES = {
    "filter": "dropped by the filter",
    "sample": "not in the sample of the filter",
    "invalid_filter": "the filter does not compile, so it drops everything:",
}


def explain(reason: str) -> str:
    """A filtered reason (`filter:No PII`, `consent`, ...) in words."""
    kind, colon, title = reason.partition(":")
    if colon and kind in RULE_PREFIXES:
        return f"{RULE_PREFIXES[kind]} “{title}”"
    return REASONS.get(reason, reason)


def _shown_body(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", "replace")


def _request(request: OutRequest) -> dict[str, Any]:
    return {
        "method": request.method,
        "url": request.url,
        "headers": dict(request.headers),
        "body": _shown_body(request.body),
        "messageIds": list(request.message_ids),
    }


def preview(doc: Mapping[str, Any], event: Any, source_id: str | None = None) -> dict[str, Any]:
    """`{"ok", "error"?, "passes", "reason"?, "explanation"?, "event"?, "mappings", "payloads",
    "requests", "problems"}`: `passes` false with a `reason` when the event is filtered."""
    try:
        config = compile_destination(doc)
    except DestinationConfigError as exc:
        return {"ok": False, "error": str(exc), "path": exc.path}
    if not isinstance(event, dict):
        return {"ok": False, "error": "the event must be a JSON object"}
    if source_id and config.sources and source_id not in config.sources:
        return _filtered(NOT_CONNECTED, [])
    triggers = [{"name": m.name, "action": m.action.id, "matches": False} for m in config.mappings]
    reason, work = decide(config, event)
    if reason is not None:
        return _filtered(reason, triggers)
    routed = work[0][1].event
    for mapping, shown in zip(config.mappings, triggers, strict=True):
        shown["matches"] = bool(mapping.trigger(routed))
    requests: list[dict[str, Any]] = []
    problems: list[str] = []
    by_action: dict[str, list[Any]] = {}
    for action_id, mapped in work:
        by_action.setdefault(action_id, []).append(mapped)
    payloads = [{"action": action_id, "payload": mapped.payload} for action_id, mapped in work]
    for action_id, items in by_action.items():
        try:
            built = config.destination.build(action_id, items)
        except (SluiceError, ValueError, TypeError, KeyError) as exc:
            problems.append(f"{action_id}: would be parked as invalid_payload: {exc}")
            continue
        requests.extend(_request(r) for r in built)
    return {
        "ok": True,
        "passes": True,
        "event": routed,
        "mappings": triggers,
        "payloads": payloads,
        "requests": requests,
        "problems": problems,
    }


def _filtered(reason: str, triggers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ok": True,
        "passes": False,
        "reason": reason,
        "explanation": explain(reason),
        "mappings": triggers,
        "payloads": [],
        "requests": [],
        "problems": [],
    }
