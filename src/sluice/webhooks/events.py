"""A verified webhook delivery turned into one Spec event.

Per provider: the delivery's **event type** (the key mappings are chosen by), its **delivery
id** (the event's `messageId`, so a provider's retry of the same delivery is a duplicate, not a
second event) and the body's parsing. The Spec event is made by a mapping (Sluice's mapping kit)
evaluated over `{"payload", "headers", "type", "name", "id"}`: the source's own mapping for the
type, else the built-in one (`DEFAULTS`, named as Segment's cloud sources and source-function
templates name them: Stripe's `charge.succeeded` is "Charge Succeeded"), else, with `unmapped:
track`, a track named after the type with the payload as its properties.

Every event gets `context.library = {name: "sluice-webhook"}` and `context.source = {provider,
type}`; an event the mapping gave no user gets the delivery's id as its `anonymousId` (a
webhook has no browser; one id per delivery merges no one).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from sluice import __version__
from sluice.mapping import Evaluator
from sluice.mapping import compile as compile_mapping
from sluice.webhooks.defaults import DEFAULTS
from sluice.webhooks.verify import Rejected

BAD_REQUEST = 400
LIBRARY = {"name": "sluice-webhook", "version": __version__}


def _title(kind: str) -> str:
    """`charge.succeeded` -> "Charge Succeeded", `pull_request.opened` -> "Pull Request
    Opened", `orders/create` -> "Orders Create": a provider's type as an event name."""
    return " ".join(w.capitalize() for w in re.split(r"[._/\s-]+", kind) if w)


def parse_body(body: bytes, content_type: str) -> Any:
    """JSON, or a form (Twilio, some GitHub configurations post `payload=<json>`)."""
    if "application/x-www-form-urlencoded" in content_type:
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise Rejected("bad_body", "a form body that is not UTF-8", BAD_REQUEST) from None
        if set(form) == {"payload"}:  # GitHub's form content type
            return parse_body(form["payload"].encode(), "application/json")
        return form
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("bad_body", "the body is not JSON", BAD_REQUEST) from None


def describe(
    provider: str, payload: Any, headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """The delivery's (event type, delivery id) as the provider marks them; the id falls back
    to the body's SHA-256, so a byte-identical redelivery still deduplicates."""
    fields = payload if isinstance(payload, Mapping) else {}
    kind, delivery = "", ""
    if provider == "stripe":
        kind, delivery = str(fields.get("type") or ""), str(fields.get("id") or "")
    elif provider == "github":
        kind = headers.get("x-github-event", "")
        if isinstance(fields.get("action"), str):
            kind = f"{kind}.{fields['action']}"
        delivery = headers.get("x-github-delivery", "")
    elif provider == "shopify":
        kind = headers.get("x-shopify-topic", "")
        delivery = headers.get("x-shopify-webhook-id") or headers.get("x-shopify-event-id", "")
    elif provider == "twilio":
        for sid, status, what in (("MessageSid", "MessageStatus", "message"),
                                  ("CallSid", "CallStatus", "call")):  # fmt: skip
            if fields.get(sid):
                kind = f"{what}.{fields.get(status) or 'received'}"
                delivery = f"{fields[sid]}:{fields.get(status, '')}"
                break
        delivery = headers.get("i-twilio-idempotency-token") or delivery
    elif provider == "standard-webhooks":
        kind, delivery = str(fields.get("type") or ""), headers.get("webhook-id", "")
    else:
        kind = str(fields.get("type") or fields.get("event") or "")
        delivery = str(fields.get("id") or "")
    return kind or "webhook", delivery or hashlib.sha256(body).hexdigest()


_evaluators: dict[bytes, Evaluator] = {}
MAX_EVALUATORS = 1024


def _evaluator(mapping: Mapping[str, Any]) -> Evaluator:
    """The compiled mapping, compiled once per distinct mapping (not per delivery)."""
    key = msgspec.json.encode(mapping)
    found = _evaluators.get(key)
    if found is None:
        if len(_evaluators) >= MAX_EVALUATORS:
            _evaluators.clear()
        found = _evaluators[key] = compile_mapping(mapping)
    return found


def spec_event(
    provider: str,
    payload: Any,
    headers: Mapping[str, str],
    kind: str,
    delivery: str,
    mappings: Mapping[str, Mapping[str, Any]],
    unmapped: str,
) -> dict[str, Any] | None:
    """The Spec event for one delivery; None when its type is unmapped and dropped."""
    mapping = mappings.get(kind) or DEFAULTS.get(provider, {}).get(kind)
    context = {"payload": payload, "headers": dict(headers), "type": kind, "id": delivery,
               "name": _title(kind)}  # fmt: skip
    if mapping is None:
        if unmapped == "drop":
            return None
        properties = payload if isinstance(payload, Mapping) else {"payload": payload}
        event: dict[str, Any] = {"type": "track", "event": _title(kind), "properties": properties}
    else:
        made = _evaluator(mapping)(context)
        event = dict(made) if isinstance(made, Mapping) else {}
        event.setdefault("type", "track")
    event["messageId"] = delivery
    if not event.get("userId") and not event.get("anonymousId"):
        event["anonymousId"] = f"{provider}:{delivery}"
    if provider == "stripe" and isinstance(payload, Mapping):
        created = payload.get("created")
        if isinstance(created, int) and "timestamp" not in event:
            event["timestamp"] = datetime.fromtimestamp(created, tz=UTC).isoformat()
    given = event.get("context")
    own_context: dict[str, Any] = given if isinstance(given, dict) else {}
    event["context"] = {
        **own_context,
        "library": LIBRARY,
        "source": {"provider": provider, "type": kind},
    }
    return event
