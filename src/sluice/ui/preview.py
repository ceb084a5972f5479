"""What a destination would do with one event, computed by the delivery engine's own code.

The preview compiles the destination document being edited (`compile_destination`), runs the
planner's `decide` on the event (consent, `integrations`, filters in Segment's order, mapping
triggers) and the destination's request builder on the mapped payloads: the verdict and the
requests shown are exactly what the worker would produce, and nothing is sent.

What is shown is redacted as the delivery records are (`Redactor`, delivery/exchange.py): URL
user info, secret-looking query parameters and headers, the values of the destination's
`secret_settings` and of its secret mapping fields (`secret_fields`: a Slack webhook URL). The
preview is for checking a configuration on screen, where a credential must not be read off.
A filter whose condition does not compile is named with the compiler's message, not just as
the reason the event was dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from sluice.bridge.destination import BridgedDestination
from sluice.delivery.config import DestinationConfig, DestinationConfigError, compile_destination
from sluice.delivery.exchange import MIN_SECRET_CHARS, Redactor
from sluice.delivery.filters import Filter
from sluice.delivery.plan import NO_MATCHING_MAPPING, NOT_CONNECTED, decide
from sluice.delivery.routing import BUNDLED, CONSENT, INTEGRATIONS_DISABLED
from sluice.destinations.base import Mapped, OutRequest
from sluice.errors import SluiceError
from sluice.ui.capture import captured

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


def filter_problems(filters: Sequence[Filter]) -> list[str]:
    """One line per filter whose condition does not compile, with the compiler's message."""
    problems = []
    for flt in filters:
        if flt.error is None:
            continue
        note = "" if flt.enabled else " (disabled: it drops nothing, but cannot be saved)"
        problems.append(f"invalid filter “{flt.title}”: {flt.error}{note}")
    return problems


def _credential(value: str) -> str:
    """What to hide of a secret field's value: a URL's path and query (its host is no secret
    and tells webhooks apart), unless too short to be redacted alone; else the whole value."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        rest = value.split(parts.netloc, 1)[1].lstrip("/")
        if len(rest) >= MIN_SECRET_CHARS:
            return rest
    return value


def redactor(config: DestinationConfig, work: Sequence[tuple[str, Mapped]]) -> Redactor:
    """The delivery records' redaction for this destination and the payloads mapped for it."""
    destination = config.destination
    secrets = list(destination.secret_values)
    for action_id, mapped in work:
        names = destination.secret_fields.get(action_id, frozenset())
        if names and isinstance(mapped.payload, Mapping):
            values = (mapped.payload.get(name) for name in sorted(names))
            secrets.extend(_credential(v) for v in values if isinstance(v, str) and v)
    return Redactor(secrets)


def _shown_json(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def _request(request: OutRequest, redact: Redactor) -> dict[str, Any]:
    return {
        "method": request.method,
        "url": redact.url(request.url),
        "headers": redact.headers(request.headers),
        "body": _shown_json(redact.text(request.body.decode("utf-8", "replace"))),
        "messageIds": list(request.message_ids),
    }


def preview(
    doc: Mapping[str, Any],
    event: Any,
    source_id: str | None = None,
    stage: Callable[[dict[str, Any], str], None] | None = None,
) -> dict[str, Any]:
    """`{"ok", "error"?, "passes", "reason"?, "explanation"?, "event"?, "mappings", "payloads",
    "requests", "problems"}`: `passes` false with a `reason` when the event is filtered.
    `stage`: the destination's transformations and PII rule (transform/stages.py)."""
    try:
        config = compile_destination(doc, stage)
    except DestinationConfigError as exc:
        return {"ok": False, "error": str(exc), "path": exc.path}
    if not isinstance(event, dict):
        return {"ok": False, "error": "the event must be a JSON object"}
    if source_id and config.sources and source_id not in config.sources:
        return _filtered(NOT_CONNECTED, [], [])
    triggers = [{"name": m.name, "action": m.action.id, "matches": False} for m in config.mappings]
    problems = filter_problems(config.filters)
    reason, work = decide(config, event, source_id or "")
    if reason is not None:
        return _filtered(reason, triggers, problems)
    routed = work[0][1].event
    for mapping, shown in zip(config.mappings, triggers, strict=True):
        shown["matches"] = bool(mapping.trigger(routed))
    redact = redactor(config, work)
    requests: list[dict[str, Any]] = []
    by_action: dict[str, list[Any]] = {}
    for action_id, mapped in work:
        by_action.setdefault(action_id, []).append(mapped)
    payloads = [{"action": action_id, "payload": mapped.payload} for action_id, mapped in work]
    for action_id, items in by_action.items():
        try:
            built = config.destination.build(action_id, items)
        except (SluiceError, ValueError, TypeError, KeyError) as exc:
            problems.append(redact.error(f"{action_id}: would be parked as invalid_payload: {exc}"))
            continue
        if isinstance(config.destination, BridgedDestination):  # Segment's code makes them
            try:
                built, refused = captured(config.destination, built)
            except (SluiceError, OSError, TimeoutError) as exc:
                problems.append(redact.error(f"{action_id}: the bridge could not run: {exc}"))
                continue
            problems.extend(redact.error(f"{action_id}: {text}") for text in refused)
        requests.extend(_request(r, redact) for r in built)
    return {
        "ok": True,
        "passes": True,
        "event": routed,
        "mappings": triggers,
        "payloads": _shown_json(redact.text(msgspec.json.encode(payloads).decode())),
        "requests": requests,
        "problems": problems,
    }


def _filtered(reason: str, triggers: list[dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    return {
        "ok": True,
        "passes": False,
        "reason": reason,
        "explanation": explain(reason),
        "mappings": triggers,
        "payloads": [],
        "requests": [],
        "problems": problems,
    }
